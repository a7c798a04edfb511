"""Argument checks shared by the theory modules: ValueError naming the value and its range."""

from __future__ import annotations

import math
from typing import Any


def positive(name: str, value: Any) -> float:
    """``value`` as a float, which must be finite and > 0."""
    v = _finite(name, value, "(0, inf)")
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r} (valid range (0, inf))")
    return v


def non_negative(name: str, value: Any) -> float:
    """``value`` as a float, which must be finite and >= 0."""
    v = _finite(name, value, "[0, inf)")
    if not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r} (valid range [0, inf))")
    return v


def correlation(name: str, value: Any) -> float:
    """``value`` as a float in [-1, 1]."""
    v = _finite(name, value, "[-1, 1]")
    if not -1.0 <= v <= 1.0:
        raise ValueError(f"{name} must be a correlation in [-1, 1], got {value!r}")
    return v


def probability(name: str, value: Any, *, closed_right: bool = False) -> float:
    """``value`` as a float in [0, 1) (or [0, 1] with ``closed_right``)."""
    v = _finite(name, value, "[0, 1]" if closed_right else "[0, 1)")
    if not (0.0 <= v <= 1.0 if closed_right else 0.0 <= v < 1.0):
        rng = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must be in {rng}, got {value!r} (valid range {rng})")
    return v


def count(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools and non-integral floats are rejected)."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return v


def _finite(name: str, value: Any, rng: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r} (valid range {rng})")
    return v
