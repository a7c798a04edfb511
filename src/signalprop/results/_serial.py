"""JSON helpers: non-finite floats are written as strings so files stay strict JSON."""

from __future__ import annotations

import math
from typing import Any

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float | None) -> float | str | None:
    """Return ``value`` as a strict-JSON scalar (``NaN``/``Infinity`` become strings)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_float(value: Any) -> float | None:
    """Inverse of :func:`encode_float`."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"expected a number or one of {sorted(_NONFINITE)}, got {value!r}")
        return _NONFINITE[value]
    return float(value)
