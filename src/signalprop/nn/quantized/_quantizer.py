"""Weight quantizers: Q(w) = alpha * c(w) on the grids of :mod:`signalprop.theory.quantized`.

Codes c and scale alpha follow the theory module's rules (binary sign, TWN ternary
threshold, k-bit grid with LSQ's step; alpha by least squares ``"mean_abs"``, variance
matching ``"rms"`` or none). Gradients (BinaryConnect: the float weights are trained
through their quantized values):

* binary codes: the estimator's surrogate g'(w) for sign, and alpha is differentiated
  through its formula (as XNOR-Net and the ReSTE reference do);
* ternary and k-bit codes: straight through at the level of Q (dQ/dw = 1), or, with
  ``"clipped"``, 1 where |w| <= limit * alpha * L (within the grid's range) and 0 beyond.

Rounding onto a fixed grid (stochastic rounding, SR / R training) is in ``_rounding.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from signalprop.nn.quantized import _fused
from signalprop.nn.quantized._surrogate import _derivative, _SignSurrogate, hard_sign, resolve
from signalprop.theory.quantized import (
    TERNARY_THRESHOLD,
    check_estimator,
    check_levels,
    check_scale,
    max_code,
    step_factor,
)

_MULTI_LEVEL_ESTIMATORS = ("ste", "clipped")


def _dims(w: Tensor, per_channel: bool) -> tuple[int, ...]:
    return tuple(range(1, w.ndim)) if per_channel and w.ndim > 1 else tuple(range(w.ndim))


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    # 0 / 0 (all codes zero: all-zero weights) is 0, never NaN
    return num / den.clamp_min(torch.finfo(num.dtype).tiny)


@dataclass(frozen=True)
class WeightQuantizer:
    """How a layer quantizes its weights (see the module docstring).

    Attributes:
        levels: ``"binary"``, ``"ternary"`` or a bit width 2..16.
        scale: ``"mean_abs"``, ``"rms"`` or ``None``.
        estimator: the backward rule (binary: any estimator; otherwise ``"ste"`` or
            ``"clipped"``).
        params: the estimator's parameters (numbers or schedules).
        threshold: the ternary threshold in units of mean |w|.
        per_channel: one alpha (and threshold / step) per output channel (dim 0) instead
            of one per tensor.

    Examples:
        >>> q = WeightQuantizer("binary", "mean_abs")
        >>> q(torch.tensor([[0.5, -1.5]])).tolist()
        [[1.0, -1.0]]
    """

    levels: str | int = "binary"
    scale: str | None = "mean_abs"
    estimator: str = "ste"
    params: dict[str, Any] = field(default_factory=dict)
    threshold: float = TERNARY_THRESHOLD
    per_channel: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", check_levels(self.levels))
        check_scale(self.scale)
        check_estimator(self.estimator)
        if self.levels != "binary" and self.estimator not in _MULTI_LEVEL_ESTIMATORS:
            raise ValueError(f"estimator {self.estimator!r} is a surrogate of sign and applies "
                             f"to binary weights; {self.levels!r} grids take one of "
                             f"{_MULTI_LEVEL_ESTIMATORS}")
        resolve(self.estimator, self.params)  # unknown names / bad values fail here
        if not (isinstance(self.threshold, (int, float)) and 0 <= self.threshold < 10):
            raise ValueError(f"threshold must be a number in [0, 10), got {self.threshold!r}")

    @property
    def max_code(self) -> int:
        """L, the largest code."""
        return max_code(self.levels)

    @torch.no_grad()
    def codes(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Integer codes (as a float tensor of w's shape) and alpha (broadcastable).

        Examples:
            >>> c, a = WeightQuantizer("ternary").codes(torch.tensor([0.1, -2.0, 0.9]))
            >>> c.tolist(), round(a.item(), 4)
            ([0.0, -1.0, 1.0], 1.45)
        """
        c, alpha, _ = self._codes(w.detach())
        return c, alpha.detach()

    def _codes(self, w: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(codes, alpha, k-bit step or None); alpha carries w's graph."""
        dims = _dims(w, self.per_channel)
        wd = w.detach()
        step = None
        if self.levels == "binary":
            c = hard_sign(wd)
        elif self.levels == "ternary":
            m = wd.abs().mean(dims, keepdim=True)
            c = torch.sign(wd) * (wd.abs() > self.threshold * m)
        else:
            m = wd.abs().mean(dims, keepdim=True)
            step = (step_factor(self.levels) * m).clamp_min(torch.finfo(w.dtype).tiny)
            top = self.max_code
            c = torch.round(wd / step).clamp_(-top, top)
        return c, self._alpha(w, c, dims, step), step

    def _alpha(self, w: Tensor, c: Tensor, dims: tuple[int, ...], step: Tensor | None) -> Tensor:
        if self.scale is None:
            return step if step is not None else torch.ones((), dtype=w.dtype, device=w.device)
        cc = c.square().sum(dims, keepdim=True)
        if self.scale == "mean_abs":
            return _safe_div((w * c).sum(dims, keepdim=True), cc)
        # rms: alpha^2 <c^2> = <w^2>; the floor keeps sqrt's gradient finite at 0
        ratio = _safe_div(w.square().sum(dims, keepdim=True), cc)
        return ratio.clamp_min(torch.finfo(w.dtype).tiny).sqrt()

    def __call__(self, w: Tensor) -> Tensor:
        """Q(w) with the gradient rule of the module docstring."""
        if self.levels == "binary":
            params = resolve(self.estimator, self.params)
            if self.scale is None:
                return _SignSurrogate.apply(w, self.estimator, params)
            return _BinaryWeight.apply(w, self.estimator, params, self.scale,
                                       _dims(w, self.per_channel))
        c, alpha, _ = self._codes(w)
        q = (c * alpha).detach()
        if self.estimator == "clipped":
            limit = resolve("clipped", self.params)["limit"] * self.max_code
            inside = (w.detach().abs() <= limit * alpha.detach().abs()).to(w.dtype)
            return q + (w - w.detach()) * inside
        return q + (w - w.detach())


class _BinaryWeight(torch.autograd.Function):
    """Q(w) = alpha(w) sign(w) with alpha = mean|w| ("mean_abs", the least-squares scale of
    sign codes) or rms(w) ("rms"), fused: autograd through the three ops would take about
    twice the elementwise passes. Backward (BinaryConnect with the estimator g'):

        dL/dw = alpha g'(w) G + dalpha/dw <G, s>,   s = sign(w), G = dL/dQ,

    dalpha/dw = s / n (mean_abs) or w / (n alpha) (rms), n the weights per scale. On
    contiguous CPU weights with the "ste" or "clipped" estimator both directions run in C
    (``_fused.py``: two passes each); otherwise in torch ops.
    """

    @staticmethod
    def forward(ctx: Any, w: Tensor, name: str, params: dict[str, float], scale: str,
                dims: tuple[int, ...]) -> Tensor:
        whole = len(dims) == w.ndim  # one scale: keep it 0-d (scalar kernels are fastest)
        ctx.name, ctx.params, ctx.scale, ctx.dims = name, params, scale, dims
        if _fused.handles(w, name, scale):
            q, alpha = _fused.binary_forward(w, scale, whole)
            ctx.save_for_backward(w, alpha)
            return q
        s = hard_sign(w)
        n = math.prod(w.shape[d] for d in dims)
        order = 1 if scale == "mean_abs" else 2
        alpha = torch.linalg.vector_norm(w, order, dim=None if whole else dims,
                                         keepdim=not whole)
        alpha = alpha / n if order == 1 else alpha / math.sqrt(n)
        ctx.save_for_backward(w, alpha, s)
        return s * alpha

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        w, alpha, *s = ctx.saved_tensors
        if not s:  # the forward ran in C
            g = _fused.binary_backward(grad, w, alpha, ctx.scale, ctx.name, ctx.params)
            if g is not None:
                return g, None, None, None, None
            s = [hard_sign(w)]
        return _binary_weight_grad(grad, w, alpha, s[0], ctx), None, None, None, None


def _binary_weight_grad(grad: Tensor, w: Tensor, alpha: Tensor, s: Tensor, ctx: Any) -> Tensor:
    """_BinaryWeight's backward in torch ops."""
    n = math.prod(w.shape[d] for d in ctx.dims)
    if alpha.ndim == 0:  # one scale: a BLAS dot product, no temporary
        dot = torch.dot(grad.reshape(-1), s.reshape(-1))
    else:
        dot = (grad * s).sum(ctx.dims, keepdim=True)
    g = grad * alpha
    if ctx.name != "ste":
        g = g.mul_(_derivative(w, ctx.name, ctx.params))
    if ctx.scale == "mean_abs":
        return g.addcmul_(s, dot / n)
    coef = torch.where(alpha > 0, dot / (alpha * n).clamp_min(torch.finfo(
        alpha.dtype).tiny), torch.zeros_like(dot))  # zero weights: no alpha gradient
    return g.addcmul_(w, coef)
