"""The forward variance gain of a quantized layer at initialization.

A layer y_i = sum_j Q(w_ij) x_j with weights drawn i.i.d. (mean 0, variance sigma^2) and
inputs independent of them has Var(y_i) = n E[Q(w)^2] E[x^2], against n sigma^2 E[x^2]
for the float weights: quantization multiplies the forward variance (and, through Q(W)^T,
the backward one) by

    G = E[Q(w)^2] / sigma^2.

With Q(w) = alpha c(w) (see :mod:`._levels`) and alpha fitted over a large tensor (the
sample means converge to expectations, so G is the fan-in -> infinity limit):

* ``"mean_abs"``: alpha = E[w c] / E[c^2], hence G = E[w c]^2 / (sigma^2 E[c^2]) <= 1 (the
  squared correlation of w and c; Cauchy-Schwarz). Binary codes on Gaussian weights:
  G = (E|w|)^2 / sigma^2 = 2 / pi; on uniform weights 3 / 4.
* ``"rms"``: alpha^2 E[c^2] = sigma^2, G = 1.
* ``None``: G = E[c^2] / sigma^2 (binary: 1 / sigma^2), or s^2 E[c^2] / sigma^2 for k bits.

E[c^2] and E[w c] = E[|w| |c|] are finite sums over the grid's bins: a code k takes the
|w| in (b_k, b_{k+1}] with Gaussian (Phi, phi) or uniform (linear) closed forms for the
bin's probability and first moment.

Examples:
    >>> round(quantized_variance_gain("binary"), 6) == round(2 / math.pi, 6)
    True
    >>> round(quantized_variance_gain("binary", "mean_abs", weights="uniform"), 12)
    0.75
    >>> quantized_variance_gain("ternary", "rms")
    1.0
"""

from __future__ import annotations

import math
from typing import Any

from scipy import special

from signalprop.theory import _checks
from signalprop.theory.quantized._levels import (
    TERNARY_THRESHOLD,
    check_levels,
    check_scale,
    max_code,
    step_factor,
)

#: Weight distributions the gain is derived for.
WEIGHTS = ("gaussian", "uniform")


def _mean_abs(weights: str) -> float:
    # E|w| for unit variance: sqrt(2 / pi) (Gaussian); a / 2 with a = sqrt(3) (uniform)
    return math.sqrt(2.0 / math.pi) if weights == "gaussian" else math.sqrt(3.0) / 2.0


def _tail(weights: str, b: float) -> tuple[float, float]:
    """(P(|w| > b), E[|w|; |w| > b]) for unit-variance weights, b >= 0."""
    if weights == "gaussian":
        return float(special.erfc(b / math.sqrt(2.0))), 2.0 * math.exp(-b * b / 2.0) / math.sqrt(
            2.0 * math.pi)
    a = math.sqrt(3.0)  # U(-a, a): |w| is uniform on [0, a]
    b = min(b, a)
    return (a - b) / a, (a * a - b * b) / (2.0 * a)


def code_moments(levels: Any, *, weights: str = "gaussian",
                 threshold: float = TERNARY_THRESHOLD) -> tuple[float, float, float]:
    """(E[c^2], E[w c], s) for unit-variance weights; s is the k-bit step (else 0).

    Examples:
        >>> [round(v, 4) for v in code_moments("binary")]
        [1.0, 0.7979, 0.0]
    """
    levels = check_levels(levels)
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    m = _mean_abs(weights)
    if levels == "binary":
        return 1.0, m, 0.0
    if levels == "ternary":
        _checks.non_negative("threshold", threshold)
        p, e = _tail(weights, threshold * m)
        return p, e, 0.0
    top = max_code(levels)
    s = step_factor(levels) * m
    ec2 = ewc = 0.0
    for k in range(1, top + 1):
        p_lo, e_lo = _tail(weights, (k - 0.5) * s)
        p_hi, e_hi = _tail(weights, (k + 0.5) * s) if k < top else (0.0, 0.0)
        ec2 += k * k * (p_lo - p_hi)
        ewc += k * (e_lo - e_hi)
    return ec2, ewc, s


def quantized_variance_gain(levels: Any, scale: str | None = "mean_abs", *,
                            weights: str = "gaussian", threshold: float = TERNARY_THRESHOLD,
                            sigma: float = 1.0) -> float:
    """G = E[Q(w)^2] / sigma^2: how much a quantized layer multiplies the forward variance
    relative to float weights of the same second moment (see the module docstring).

    Args:
        levels: ``"binary"``, ``"ternary"`` or a bit width 2..16.
        scale: ``"mean_abs"``, ``"rms"`` or ``None``.
        weights: the float weights' distribution, ``"gaussian"`` or ``"uniform"`` (torch's
            default ``nn.Linear`` init).
        threshold: the ternary threshold in units of E|w|.
        sigma: the float weights' standard deviation (matters only for ``scale=None``
            with binary / ternary codes, whose levels are +-1 whatever the weights).

    Returns:
        G (1 for ``"rms"``).

    Examples:
        >>> round(quantized_variance_gain("ternary"), 4), round(quantized_variance_gain(4), 4)
        (0.8084, 0.9706)
        >>> quantized_variance_gain("binary", None, sigma=0.5)   # +-1 weights: 1 / sigma^2
        4.0
    """
    scale = check_scale(scale)
    sigma = _checks.positive("sigma", sigma)
    ec2, ewc, s = code_moments(levels, weights=weights, threshold=threshold)
    if scale == "rms":
        return 1.0
    if scale == "mean_abs":
        return ewc * ewc / ec2 if ec2 > 0 else 0.0
    if s > 0:  # k bits, no rescaling: Q = s c, and s is proportional to sigma
        return s * s * ec2
    return ec2 / (sigma * sigma)
