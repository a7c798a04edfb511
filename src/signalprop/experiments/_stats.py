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
