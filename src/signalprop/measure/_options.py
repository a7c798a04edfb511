"""Validation of the scalar options every measurement takes (k, steps, probes, bins, seed,
index, tolerance, quantiles, flags): one ``ValueError`` naming the argument, the value
received and what is allowed, instead of a ``TypeError`` from deep inside.

Integers are Python ints or anything with ``__index__`` (NumPy integers, 0-d integer
tensors) but never ``bool``, a string or a float, even an integral one (``k=4.0`` is
refused: a count given as a float is usually a mistake upstream). Numbers are ints or
floats (NumPy scalars included), finite, never ``bool`` or a string.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

#: Largest seed a ``torch.Generator`` accepts.
MAX_SEED = 2**63 - 1


def _allowed(low: float | None, high: float | None, kind: str) -> str:
    if low is not None and high is not None:
        return f"{kind} in [{low}, {high}]"
    if low is not None:
        return f"{kind} >= {low}"
    if high is not None:
        return f"{kind} <= {high}"
    return kind


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None,
              none: bool = False) -> int | None:
    """``value`` as an int in [low, high] (``None`` passes when ``none``), else ValueError.

    Examples:
        >>> check_int("k", 4, low=1)
        4
        >>> check_int("k", "4", low=1)
        Traceback (most recent call last):
        ...
        ValueError: k must be an integer >= 1, got '4' (str)
    """
    if value is None and none:
        return None
    allowed = _allowed(low, high, "an integer") + (" or None" if none else "")
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)  # refuses str, float (also integral ones) and float tensors
    except TypeError:
        raise ValueError(f"{name} must be {allowed}, got {value!r} "
                         f"({type(value).__name__})") from None
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be {allowed}, got {v}")
    return v


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer in [0, 2**63 - 1].

    Examples:
        >>> check_seed(7)
        7
    """
    return check_int(name, value, low=0, high=MAX_SEED)  # type: ignore[return-value]


def check_float(name: str, value: Any, *, low: float | None = None,
                high: float | None = None) -> float:
    """``value`` as a finite float in [low, high], else ValueError.

    Examples:
        >>> check_float("tolerance", 1e-5, low=0.0)
        1e-05
        >>> check_float("tolerance", "1e-5", low=0.0)
        Traceback (most recent call last):
        ...
        ValueError: tolerance must be a finite number >= 0.0, got '1e-5' (str)
    """
    allowed = _allowed(low, high, "a finite number")
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be {allowed}, got {v}")
    return v


def check_floats(name: str, values: Any, *, low: float | None = None,
                 high: float | None = None) -> list[float]:
    """A sequence of finite numbers in [low, high] (quantile levels, ...), as floats.

    Examples:
        >>> check_floats("quantiles", (0.5, 1), low=0.0, high=1.0)
        [0.5, 1.0]
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r} "
                         f"({type(values).__name__})")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(check_float(f"{name}[{i}]", v, low=low, high=high))
        except ValueError as e:
            raise ValueError(f"{e} (in {name}={list(values)!r})") from None
    return out


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy bools included), else ValueError.

    Examples:
        >>> check_bool("per_layer", True)
        True
    """
    if value is True or value is False or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """One of the strings ``allowed``, else ValueError listing them.

    Examples:
        >>> check_choice("method", "auto", ("auto", "func"))
        'auto'
    """
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def check_label(value: Any) -> str | None:
    """A result label: a string or None.

    Examples:
        >>> check_label("run 1")
        'run 1'
    """
    if value is not None and not isinstance(value, str):
        raise ValueError(f"label must be a string or None, got {value!r} "
                         f"({type(value).__name__})")
    return value
