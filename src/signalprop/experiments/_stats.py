"""Spread across seeds: means, standard errors and a "clearly different" test.

A verdict on a statistical effect compares two sets of per-seed measurements a and b:

    d = mean(a) - mean(b),   se(d) = sqrt(se(a)^2 + se(b)^2),   se(x) = std(x, ddof=1) / sqrt(n)

and calls them separated when d > k * se(d) (k = 2 by default: about a 97.7% one-sided
Gaussian test). Interactions (a difference of differences), the slope of a line through
means with standard errors, and the number of seeds that detects a given effect at
k standard errors follow the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist

import numpy as np


def _values(name: str, values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one value, got none")
    return arr


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with ddof=1 over sqrt(n)).

    Args:
        values: one number per seed (at least one).

    Returns:
        ``(mean, se)``; ``se`` is NaN for a single value.

    Raises:
        ValueError: ``values`` is empty.

    Examples:
        >>> mean_se([1.0, 2.0, 3.0])
        (2.0, 0.5773502691896258)
    """
    arr = _values("values", values)
    if arr.size < 2:
        return float(arr[0]), math.nan
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(arr.size))


def diff_se(a: Iterable[float], b: Iterable[float]) -> tuple[float, float]:
    """mean(a) - mean(b) and its standard error sqrt(se(a)^2 + se(b)^2) (independent seeds).

    Args:
        a: per-seed values of the first condition.
        b: per-seed values of the second condition.

    Returns:
        ``(difference, se)``; ``se`` is NaN when either side has a single value.

    Examples:
        >>> d, se = diff_se([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
        >>> d, round(se, 4)
        (3.0, 0.5774)
    """
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    return ma - mb, math.sqrt(sa * sa + sb * sb)


def separated(a: Iterable[float], b: Iterable[float], k: float = 2.0) -> bool:
    """Whether mean(a) exceeds mean(b) by more than ``k`` standard errors of the difference.

    A NaN standard error (a single seed on either side) never counts as separated, and
    neither does a difference of zero with zero spread.

    Args:
        a: per-seed values expected to be larger.
        b: per-seed values expected to be smaller.
        k: how many standard errors the difference must exceed (>= 0).

    Returns:
        True when ``mean(a) - mean(b) > k * se``.

    Examples:
        >>> separated([0.9, 0.92, 0.91], [0.5, 0.55, 0.52])
        True
        >>> separated([0.5, 0.9], [0.6, 0.7])
        False
    """
    if not k >= 0 or not math.isfinite(k):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    d, se = diff_se(a, b)
    if math.isnan(se) or math.isnan(d):
        return False
    return d > k * se and d > 0


def interaction_se(a_hi: Iterable[float], b_hi: Iterable[float], a_lo: Iterable[float],
                   b_lo: Iterable[float]) -> tuple[float, float]:
    """A difference of differences and its standard error (four independent groups):

        (mean(a_hi) - mean(b_hi)) - (mean(a_lo) - mean(b_lo)),
        se = sqrt(se(a_hi)^2 + se(b_hi)^2 + se(a_lo)^2 + se(b_lo)^2).

    E.g. how much more method a beats method b at a large depth than at a small one.

    Returns:
        ``(interaction, se)``; ``se`` is NaN when a group has a single value.

    Examples:
        >>> d, se = interaction_se([0.9, 0.8], [0.1, 0.2], [0.7, 0.8], [0.7, 0.8])
        >>> round(d, 6), round(se, 6)
        (0.7, 0.1)
    """
    d_hi, se_hi = diff_se(a_hi, b_hi)
    d_lo, se_lo = diff_se(a_lo, b_lo)
    return d_hi - d_lo, math.sqrt(se_hi * se_hi + se_lo * se_lo)


def slope_se(xs: Iterable[float], means: Iterable[float], ses: Iterable[float]
             ) -> tuple[float, float, float]:
    """Least-squares line through points (x_i, m_i) whose means have standard errors s_i:
    slope, intercept, and the slope's standard error propagated from the s_i.

        b = sum_i c_i m_i,  c_i = (x_i - mean(x)) / sum_j (x_j - mean(x))^2,
        se(b) = sqrt(sum_i c_i^2 s_i^2)

    The points are weighted equally, and se(b) is what seed noise alone puts on the slope
    (it does not grow when the points bend away from a line).

    Args:
        xs: at least two distinct x values.
        means: the mean at each x.
        ses: the standard error of each mean.

    Returns:
        ``(slope, intercept, se)``.

    Examples:
        >>> b, a, se = slope_se([0, 1, 2], [1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
        >>> round(b, 6), round(a, 6), round(se, 6)  # se = 0.1 / sqrt(2)
        (1.0, 1.0, 0.070711)
    """
    x = _values("xs", xs)
    m = _values("means", means)
    s = _values("ses", ses)
    if not (x.size == m.size == s.size):
        raise ValueError(f"xs, means and ses must have one value per point, got {x.size}, "
                         f"{m.size} and {s.size}")
    sxx = float(((x - x.mean()) ** 2).sum())
    if x.size < 2 or sxx == 0:
        raise ValueError(f"a slope needs at least two distinct xs, got {x.tolist()}")
    c = (x - x.mean()) / sxx
    slope = float(c @ m)
    return slope, float(m.mean() - slope * x.mean()), float(np.sqrt((c * c) @ (s * s)))


def seeds_needed(sigma: float, effect: float, terms: float = 2.0, k: float = 2.0,
                 power: float = 0.9) -> int:
    """The fewest seeds per group for which an effect of size ``effect`` exceeds ``k``
    standard errors with probability ``power`` (normal approximation).

    The estimate's variance is ``terms * sigma^2 / n`` for n seeds per group and
    per-seed standard deviation ``sigma``: ``terms`` is 2 for a difference of two means,
    4 for a difference of differences, 2 * sum_i c_i^2 for the slope of
    :func:`slope_se` through differences of means. Then

        effect >= (k + z_power) * sigma * sqrt(terms / n)
        =>  n = ceil(terms * ((k + z_power) * sigma / effect)^2)   (at least 2),

    with z_power the standard normal quantile (1.28 at power 0.9).

    Examples:
        >>> seeds_needed(sigma=0.02, effect=0.05)  # 2 * (3.28 * 0.4)^2 = 3.44
        4
        >>> seeds_needed(sigma=0.02, effect=0.05, terms=4)
        7
    """
    if not (sigma >= 0 and effect > 0 and terms > 0 and k >= 0 and 0 < power < 1):
        raise ValueError(f"need sigma >= 0, effect > 0, terms > 0, k >= 0 and power in "
                         f"(0, 1), got {sigma}, {effect}, {terms}, {k}, {power}")
    z = NormalDist().inv_cdf(power)
    return max(2, math.ceil(terms * ((k + z) * sigma / effect) ** 2 - 1e-9))


def positive_test(estimate: float, se: float, k: float = 2.0, power: float = 0.9
                  ) -> dict[str, float | bool]:
    """Whether ``estimate`` exceeds ``k`` standard errors, with what this noise could see.

    Returns ``{"estimate", "se", "threshold" (k * se), "passes", "detectable"}``, where
    ``detectable`` = (k + z_power) * se is the true effect the test would catch with
    probability ``power``: the evidence, next to a failed test, that it could have shown
    an effect of that size. A NaN ``se`` (one seed) never passes.

    Examples:
        >>> t = positive_test(0.30, 0.05)
        >>> t["passes"], round(t["threshold"], 3), round(t["detectable"], 3)
        (True, 0.1, 0.164)
    """
    z = NormalDist().inv_cdf(power)
    ok = math.isfinite(se) and math.isfinite(estimate) and estimate > k * se and estimate > 0
    return {"estimate": float(estimate), "se": float(se), "threshold": k * se,
            "passes": bool(ok), "detectable": (k + z) * se}


def signed(value: float, se: float, digits: int = 3) -> str:
    """``"+0.120 +- 0.030"`` (the sign always shown).

    Examples:
        >>> signed(-0.05, 0.01)
        '-0.050 +- 0.010'
    """
    return f"{value:+.{digits}f} +- {se:.{digits}f}"
