"""Deep fully connected networks with theory-driven initializations.

``mlp(depth, width, activation, init)`` is a stack of ``depth`` blocks
``fc{l}: Linear -> act{l}: activation`` and an optional linear ``head``. With
``init="critical"`` the weights sit on the order-to-chaos boundary, where
``signalprop.theory.propagate`` predicts the per-layer pre-activation variance q_l and the
finite-width module predicts how their kurtosis grows with depth / width.

Examples:
    >>> import torch
    >>> net = mlp(depth=4, width=64, activation="tanh", in_features=10, out_features=3)
    >>> net(torch.randn(5, 10)).shape
    torch.Size([5, 3])
    >>> [name for name, _ in net.named_children()][:3]
    ['fc0', 'act0', 'fc1']
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from signalprop import theory
from signalprop.nn.activations import GammaAct
from signalprop.nn.init import critical_, lecun_normal_

INITS = ("critical", "lecun", "he", "torch")

class MLP(nn.Sequential):
    """``fc0, act0, ..., fc{depth-1}, act{depth-1}[, head]``; see :func:`mlp`."""

    def __init__(self, layers: OrderedDict[str, nn.Module], init: str, sigma_w2: float | None,
                 sigma_b2: float) -> None:
        super().__init__(layers)
        self.init, self.sigma_w2, self.sigma_b2 = init, sigma_w2, sigma_b2

    def hidden_layers(self) -> list[nn.Linear]:
        """The ``depth`` hidden Linear layers (their outputs are the pre-activations)."""
        return [m for name, m in self.named_children() if name.startswith("fc")]


def mlp(
    depth: int,
    width: int,
    activation: str = "relu",
    init: str | Callable[[nn.Module], Any] = "critical",
    *,
    in_features: int | None = None,
    out_features: int | None = None,
    sigma_b2: float = 0.0,
    bias: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **params: float,
) -> MLP:
    """A deep MLP initialized for signal propagation.

    Args:
        depth: number of hidden Linear + activation blocks (>= 1).
        width: hidden width (>= 1).
        activation: registered activation name; ``**params`` are its parameters.
        init: ``"critical"`` (W ~ N(0, sigma_w*^2 / fan_in), b ~ N(0, sigma_b^2) at chi_1 = 1),
            ``"lecun"`` (N(0, 1 / fan_in), SELU's), ``"he"`` (N(0, g^2 / fan_in) with
            g^2 = 1 / E[phi(z)^2], which keeps E[phi^2] fixed), ``"torch"`` (torch's
            default), or a callable applied to the model.
        in_features: input size (default: ``width``).
        out_features: size of a linear ``head`` after the last block (default: none).
        sigma_b2: bias variance for ``init="critical"`` (other inits zero the biases).
        bias: whether Linear layers have biases.
        device: where to create the parameters.
        dtype: their precision.

    Returns:
        An :class:`MLP` (an ``nn.Sequential``) with ``.sigma_w2`` set for the Gaussian inits.

    Examples:
        >>> net = mlp(depth=3, width=128, activation="relu")
        >>> net.sigma_w2
        2.0
    """
    for name, v in (("depth", depth), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if in_features is not None and (not isinstance(in_features, int) or in_features < 1):
        raise ValueError(f"in_features must be an integer >= 1, got {in_features!r}")
    if out_features is not None and (not isinstance(out_features, int) or out_features < 1):
        raise ValueError(f"out_features must be an integer >= 1, got {out_features!r}")
    if isinstance(init, str) and init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)} or a callable")
    if not (sigma_b2 >= 0 and math.isfinite(sigma_b2)):
        raise ValueError(f"sigma_b2 must be finite and >= 0, got {sigma_b2!r}")
    kw = {"device": device, "dtype": dtype, "bias": bias}
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    fan_in = in_features or width
    for layer in range(depth):
        layers[f"fc{layer}"] = nn.Linear(fan_in, width, **kw)
        layers[f"act{layer}"] = GammaAct(activation, gamma=1.0, **params)
        fan_in = width
    if out_features is not None:
        layers["head"] = nn.Linear(width, out_features, **kw)
    model = MLP(layers, init if isinstance(init, str) else "custom", None, sigma_b2)
    if init == "critical":
        model.sigma_w2 = critical_(model, activation, sigma_b2, **params)
    elif init == "lecun":
        lecun_normal_(model)
        model.sigma_w2, model.sigma_b2 = 1.0, 0.0
    elif init == "he":
        act = theory.get_activation(activation, **params)
        g2 = 1.0 / float(theory.expect_phi2(act, 1.0))
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0.0, math.sqrt(g2 / m.in_features))
                    if m.bias is not None:
                        m.bias.zero_()
        model.sigma_w2, model.sigma_b2 = g2, 0.0
    elif callable(init):
        init(model)
    return model
