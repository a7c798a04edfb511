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
from signalprop.results import BlockStats, SPPResult

INITS = ("critical", "lecun", "he", "torch")

class MLP(nn.Sequential):
    """``fc0, act0, ..., fc{depth-1}, act{depth-1}[, head]``; see :func:`mlp`.

    Examples:
        >>> net = mlp(depth=2, width=8, activation="relu", in_features=4, out_features=3)
        >>> isinstance(net, MLP), net.init, net.sigma_w2, len(net.hidden_layers())
        (True, 'critical', 2.0, 2)
    """

    def __init__(self, layers: OrderedDict[str, nn.Module], init: str, sigma_w2: float | None,
                 sigma_b2: float) -> None:
        super().__init__(layers)
        self.init, self.sigma_w2, self.sigma_b2 = init, sigma_w2, sigma_b2

    def hidden_layers(self) -> list[nn.Linear]:
        """The ``depth`` hidden Linear layers (their outputs are the pre-activations)."""
        return [m for name, m in self.named_children() if name.startswith("fc")]

    def signal_blocks(self) -> list[tuple[str, nn.Module]]:
        """Measurement points: every hidden layer's pre-activation h_l (``fc{l}`` output)."""
        return [(name, m) for name, m in self.named_children() if name.startswith("fc")]

    def _theory_inputs(self, input_var: float, input_sq_mean: float) -> tuple[Any, float]:
        if self.sigma_w2 is None:
            raise ValueError(
                f"no mean-field prediction for init={self.init!r}: the weight variance is "
                "not sigma_w^2 / fan_in (use init='critical', 'lecun' or 'he')")
        act = self.get_submodule("act0")
        activation = theory.get_activation(act.name, **act.params)
        # h_0 = W_0 x + b_0 sees the raw input: its second moment is sigma_w^2 E[x^2] + sigma_b^2.
        q0 = self.sigma_w2 * (input_var + input_sq_mean) + self.sigma_b2
        return activation, q0

    def predicted_spp(
        self, input_var: float = 1.0, input_sq_mean: float = 0.0,
        batch_size: int | None = None, label: str | None = None,
    ) -> SPPResult:
        """Mean-field SPP of the pre-activations h_l (records match :meth:`signal_blocks`).

        q_l = E[h_l^2] follows the q-map from q_0 = sigma_w^2 E[x^2] + sigma_b^2, and the
        correlation c_l of two different inputs the c-map from
        c_0 = (sigma_w^2 E[x_a x_b] + sigma_b^2) / q_0 (independent inputs: E[x_a x_b] is
        their squared mean). Over a batch of independent inputs a channel's mean squared is
        then q_l c_l and its variance q_l (1 - c_l): ReLU-like networks drift towards
        c = 1, so their channel means grow and variances shrink with depth. With
        ``batch_size`` B, the statistics are those of a batch of B independent inputs:
        the sample mean carries var / B of noise and the biased variance loses a factor
        (B - 1) / B.

        Examples:
            >>> net = mlp(depth=3, width=256, activation="tanh")
            >>> [round(v, 3) for v in net.predicted_spp().avg_var][:2]
            [1.0, 0.394]
        """
        act, q0 = self._theory_inputs(input_var, input_sq_mean)
        depth = len(self.signal_blocks())
        c0 = (self.sigma_w2 * input_sq_mean + self.sigma_b2) / q0 if q0 > 0 else 0.0
        prop = theory.propagate(act, depth - 1, self.sigma_w2, self.sigma_b2, q0=q0, c0=c0)
        assert prop.c is not None
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        inv_b = 0.0 if batch_size is None else 1.0 / batch_size
        records = []
        for i, (name, _) in enumerate(self.signal_blocks()):
            var = float(prop.q[i] * (1.0 - prop.c[i]))
            sq_mean = float(prop.q[i] * prop.c[i]) + var * inv_b
            records.append(BlockStats(name, i, sq_mean, var * (1.0 - inv_b)))
        return SPPResult(label or f"{act.name} MLP (predicted)", records, kind="predicted")

    def predicted_gradient_chi(self, input_var: float = 1.0, input_sq_mean: float = 0.0
                               ) -> list[float]:
        """Per-gap gradient factors chi_l = sigma_w^2 E[phi'(sqrt(q_l) z)^2], l = 0..depth-2.

        E[(dL/dh_l)^2] = chi_l E[(dL/dh_{l+1})^2] for square hidden layers; pass them to
        ``signalprop.results.chi_prediction`` to overlay a gradient SPP.
        """
        act, q0 = self._theory_inputs(input_var, input_sq_mean)
        depth = len(self.signal_blocks())
        if depth < 2:
            return []
        return [float(c) for c in
                theory.propagate(act, depth - 1, self.sigma_w2, self.sigma_b2, q0=q0).chi]


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
