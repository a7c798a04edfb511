"""Spread across seeds: means, standard errors and a "clearly different" test.

A verdict on a statistical effect compares two sets of per-seed measurements a and b:

    d = mean(a) - mean(b),   se(d) = sqrt(se(a)^2 + se(b)^2),   se(x) = std(x, ddof=1) / sqrt(n)

and calls them separated when d > k * se(d) (k = 2 by default: about a 97.7% one-sided
Gaussian test).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def interaction_se(a_hi: Iterable[float], a_lo: Iterable[float], b_hi: Iterable[float],
                   b_lo: Iterable[float]) -> tuple[float, float]:
    """(mean(a_hi) - mean(a_lo)) - (mean(b_hi) - mean(b_lo)) and its standard error
    sqrt(sum of the four squared standard errors) (four independent sets of seeds).

    The interaction of a 2 x 2 design: how much more the change from ``lo`` to ``hi`` is
    for ``a`` than for ``b`` (e.g. how much more accuracy plain networks lose with depth
    than normalized ones).

    Examples:
        >>> d, se = interaction_se([3.0, 4.0, 5.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0],
        ...                        [1.0, 2.0, 3.0])
        >>> d, round(se, 4)
        (3.0, 0.8165)
    """
    da, sa = diff_se(a_hi, a_lo)
    db, sb = diff_se(b_hi, b_lo)
    return da - db, math.sqrt(sa * sa + sb * sb)


def seeds_needed(sd: float, effect: float, k: float = 2.0, power: float = 0.95) -> int:
    """Seeds per group so that a true difference ``effect`` between two groups of per-seed
    s.d. ``sd`` exceeds ``k`` standard errors with probability ``power`` (normal
    approximation): n = ceil(2 (sd (k + z_power) / effect)^2), at least 2.

    Examples:
        >>> seeds_needed(0.15, 0.1)  # s.d. 0.15, smallest effect of interest 0.1
        60
    """
    from statistics import NormalDist

    if not (sd >= 0 and effect > 0 and 0 < power < 1 and k >= 0):
        raise ValueError(f"need sd >= 0, effect > 0, 0 < power < 1, k >= 0; got sd={sd!r}, "
                         f"effect={effect!r}, power={power!r}, k={k!r}")
    z = NormalDist().inv_cdf(power)
    return max(2, math.ceil(2 * (sd * (k + z) / effect) ** 2))


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
