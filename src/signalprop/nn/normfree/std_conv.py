"""Scaled Weight Standardization layers (Brock, De & Smith, ICLR 2021, arXiv 2101.08692).

For every output unit i with fan-in N = (in_channels / groups) * prod(kernel_size):

    W_hat_i = gain_i * gamma * (W_i - mean(W_i)) / (std(W_i) * sqrt(N))

with the biased standard deviation. For inputs with zero mean and unit variance per
channel the output then has zero mean (the weights sum to zero per unit, which removes the
mean shift of ReLU-like inputs) and variance gamma^2 * gain_i^2 (the squared weights sum to
one per unit); ``signalprop.theory.gamma`` gives the gamma that makes an activation's output
unit-variance again.

Two eps conventions exist and both are offered:

* ``eps_mode="clamp"`` (default, DeepMind's reference): scale = rsqrt(max(N * var, eps)),
  eps = 1e-4.
* ``eps_mode="add"`` (timm): scale = rsqrt(N * (var + eps)), eps = 1e-6 by default.

The standardized weight is cached whenever no autograd graph is needed for it (eval mode
or ``torch.no_grad()`` with parameters that require no gradient through this call), and
recomputed only when a parameter changes (tensor version counters), so inference costs
what a plain convolution costs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

_DEFAULT_EPS = {"clamp": 1e-4, "add": 1e-6}


def standardize_weight(
    weight: Tensor, gain: Tensor | None, gamma: float = 1.0, eps: float = 1e-4,
    eps_mode: str = "clamp",
) -> Tensor:
    """Scaled Weight Standardization of ``weight`` (out, ...) per output unit.

    Args:
        weight: (out, *fan_in_dims) weight tensor.
        gain: (out,) per-unit gain, or None for 1.
        gamma: activation gain multiplied into every unit.
        eps: stabiliser, see ``eps_mode``.
        eps_mode: ``"clamp"``: rsqrt(max(N var, eps)); ``"add"``: rsqrt(N (var + eps)).

    Returns:
        Tensor of ``weight``'s shape.

    Examples:
        >>> w = torch.randn(4, 3, 3, 3)
        >>> ws = standardize_weight(w, None)
        >>> torch.allclose(ws.flatten(1).pow(2).sum(1), torch.ones(4), atol=1e-5)
        True
    """
    if eps_mode not in _DEFAULT_EPS:
        raise ValueError(f"eps_mode must be 'clamp' or 'add', got {eps_mode!r}")
    flat = weight.reshape(weight.shape[0], -1)
    # Two passes (mean, then the norm of the centred rows) are exact and vectorise well;
    # torch.var_mean's Welford loop is ~15x slower on CPU.
    centered = flat - flat.mean(dim=1, keepdim=True)
    n_var = torch.linalg.vector_norm(centered, dim=1, keepdim=True).square()  # N * var
    if eps_mode == "clamp":
        scale = torch.rsqrt(torch.clamp(n_var, min=eps))
    else:
        scale = torch.rsqrt(n_var + eps * flat.shape[1])
    scale = scale * gamma if gain is None else scale * (gain.reshape(-1, 1) * gamma)
    if _tracing() or (
        torch.is_grad_enabled() and (centered.requires_grad or scale.requires_grad)
    ):
        return (centered * scale).reshape_as(weight)
    # No graph: scale in place; a fresh weight-sized allocation costs more than the math.
    return centered.mul_(scale).reshape_as(weight)


def _tracing() -> bool:
    """True under torch.fx symbolic tracing, torch.export or torch.compile (no caching there)."""
    return torch.fx._symbolic_trace.is_fx_symbolic_tracing() or torch.compiler.is_compiling()


class _ScaledWSMixin:
    """Scaled WS for a weight layer: mixed in before nn.ConvNd / nn.Linear.

    Subclasses take the base layer's constructor arguments plus the keyword-only
    ``gamma``, ``eps``, ``eps_mode`` and ``gain_init``.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None

    def __init__(
        self,
        *args: Any,
        gamma: float = 1.0,
        eps: float | None = None,
        eps_mode: str = "clamp",
        gain_init: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if eps_mode not in _DEFAULT_EPS:
            raise ValueError(f"eps_mode must be 'clamp' or 'add', got {eps_mode!r}")
        eps = _DEFAULT_EPS[eps_mode] if eps is None else float(eps)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not math.isfinite(gamma):
            raise ValueError(f"gamma must be finite, got {gamma}")
        self.gamma = float(gamma)
        self.eps = eps
        self.eps_mode = eps_mode
        self.gain_init = float(gain_init)
        self._cache: Tensor | None = None
        self._cache_key: tuple[Any, ...] | None = None
        super().__init__(*args, **kwargs)  # calls reset_parameters()
        w = self.weight
        self.gain = nn.Parameter(torch.full((w.shape[0],), self.gain_init, dtype=w.dtype,
                                            device=w.device))

    def reset_parameters(self) -> None:
        super().reset_parameters()  # type: ignore[misc]
        self.reset_ws_parameters()

    def reset_ws_parameters(self) -> None:
        """Gain to ``gain_init`` and bias to 0, leaving the raw weight as it is."""
        # The base constructor calls reset_parameters() before the gain exists.
        with torch.no_grad():
            if "gain" in self._parameters:  # type: ignore[attr-defined]
                self.gain.fill_(self.gain_init)
            if self.bias is not None:
                self.bias.zero_()
        self._cache = None
        self._cache_key = None

    def _needs_graph(self) -> bool:
        return torch.is_grad_enabled() and (self.weight.requires_grad or self.gain.requires_grad)

    def standardized_weight(self) -> Tensor:
        """The weight actually applied: cached whenever no autograd graph is needed."""
        w, g = self.weight, self.gain
        if _tracing() or self._needs_graph():
            return standardize_weight(w, g, self.gamma, self.eps, self.eps_mode)
        # Version counters change on every in-place update (optimizer steps,
        # load_state_dict, fill_); data_ptr changes when .to() swaps the storage.
        key = (w._version, g._version, w.data_ptr(), g.data_ptr(), w.dtype, w.device,
               self.gamma, self.eps, self.eps_mode)
        if self._cache is None or key != self._cache_key:
            with torch.no_grad():
                self._cache = standardize_weight(w, g, self.gamma, self.eps, self.eps_mode)
            self._cache_key = key
        return self._cache

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.standardized_weight(), self.bias)  # type: ignore[attr-defined]

    def extra_repr(self) -> str:
        base = super().extra_repr()  # type: ignore[misc]
        return base + f", gamma={self.gamma:.6g}, eps={self.eps:g}, eps_mode={self.eps_mode!r}"

    def __getstate__(self) -> dict[str, Any]:
        # The cache is derived data: never pickle or deep-copy it.
        state = dict(self.__dict__)
        state["_cache"] = None
        state["_cache_key"] = None
        return state


_CONV_DOC = """Scaled Weight Standardization drop-in replacement for :class:`torch.nn.Conv{d}d`.

    Takes ``nn.Conv{d}d``'s arguments (``device``/``dtype`` included) plus keyword-only
    ``gamma`` (activation gain multiplied into the weight; leave 1 when the activation
    applies its own gain, as :class:`GammaAct` does), ``eps``, ``eps_mode`` (``"clamp"`` or
    ``"add"``) and ``gain_init``. The bias starts at 0.

    Signal propagation: for input channels with equal means and unit variance, every output
    unit has zero mean and variance ``(gamma * gain_i)^2``, whatever the raw weights are.

    Examples:
        >>> conv = ScaledStdConv{d}d(8, 16, 3, padding=1)
        >>> conv.standardized_weight().shape == conv.weight.shape
        True

    References:
        Brock, De & Smith, "Characterizing signal propagation to close the performance gap
        in unnormalized ResNets", ICLR 2021.
    """


class ScaledStdConv1d(_ScaledWSMixin, nn.Conv1d):
    __doc__ = _CONV_DOC.format(d=1)


class ScaledStdConv2d(_ScaledWSMixin, nn.Conv2d):
    __doc__ = _CONV_DOC.format(d=2)


class ScaledStdConv3d(_ScaledWSMixin, nn.Conv3d):
    __doc__ = _CONV_DOC.format(d=3)


class WSLinear(_ScaledWSMixin, nn.Linear):
    """Drop-in replacement for :class:`torch.nn.Linear` with Scaled Weight Standardization.

    Each output row is standardized over its ``in_features`` fan-in:
    ``W_hat_i = gain_i * gamma * (W_i - mean W_i) / (std W_i * sqrt(in_features))``.
    Takes ``nn.Linear``'s arguments plus ``gamma``, ``eps``, ``eps_mode``, ``gain_init``.

    Examples:
        >>> lin = WSLinear(64, 32)
        >>> lin(torch.randn(5, 64)).shape
        torch.Size([5, 32])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.standardized_weight(), self.bias)
