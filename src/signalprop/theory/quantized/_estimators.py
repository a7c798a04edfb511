"""Surrogate gradients of sign(x): the registry, their parameters and formulas (NumPy).

A straight-through estimator keeps sign(x) in the forward pass and back-propagates the
derivative g'(x) of a surrogate g instead of sign's zero derivative:

======== ============ ====================================================================
name     parameters   g(x) (equivalent forward)           g'(x) (what the backward uses)
======== ============ ====================================================================
ste      --           x                                   1
clipped  limit = 1    clamp(x, -limit, limit)             1{|x| <= limit}
tanh     beta = 1     tanh(beta x)                        beta (1 - tanh(beta x)^2)
reste    o = 3,       sign(x) |x|^(1/o)                   m^(1/o - 1)           for |x| <= m
         t = 1.5,                                         (1/o) |x|^(1/o - 1)   for m < |x| <= t
         m = 0.1                                          0                     for |x| > t
======== ============ ====================================================================

ReSTE (Wu et al., ICCV 2023) is the power function sign(x)|x|^(1/o), o >= 1, rectified in
the backward pass: beyond the threshold t the gradient is cut, and below m the unbounded
derivative is replaced by the slope of the secant from 0 to (m, m^(1/o)) (the reference
code's constants, t = 1.5 and m = 0.1). o = 1 is the clipped STE with limit t; o -> inf
approaches sign. "clipped" with limit 1 is the STE of BinaryNet (Hubara et al. 2016),
also the "STE" baseline of the ReSTE paper.

Examples:
    >>> estimator_params("reste", o=2)
    {'o': 2.0, 't': 1.5, 'm': 0.1}
    >>> surrogate_derivative("clipped", np.array([0.5, 2.0])).tolist()
    [1.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Estimator name -> its parameters' defaults.
ESTIMATORS: dict[str, dict[str, float]] = {
    "ste": {},
    "clipped": {"limit": 1.0},
    "tanh": {"beta": 1.0},
    "reste": {"o": 3.0, "t": 1.5, "m": 0.1},
}


def check_estimator(estimator: Any) -> str:
    """``estimator`` validated against :data:`ESTIMATORS` (the message lists them).

    Examples:
        >>> check_estimator("reste")
        'reste'
    """
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    return estimator


def estimator_params(estimator: str, **params: Any) -> dict[str, float]:
    """The estimator's parameters as floats, defaults filled in, ranges checked.

    A parameter may be any object with ``__float__`` (e.g. an annealing schedule for o).

    Raises:
        ValueError: unknown estimator or parameter, or a value out of range
            (clipped: limit > 0; tanh: beta > 0; reste: o >= 1, t > 0, 0 < m < t).

    Examples:
        >>> estimator_params("clipped", limit=2)
        {'limit': 2.0}
    """
    name = check_estimator(estimator)
    defaults = ESTIMATORS[name]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise ValueError(f"estimator {name!r} takes no parameter(s) {unknown}; "
                         f"its parameters: {allowed}")
    out: dict[str, float] = {}
    for key, default in defaults.items():
        value = params.get(key, default)
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"estimator {name!r}: {key} must be a number, got {value!r}") from None
        if not np.isfinite(v):
            raise ValueError(f"estimator {name!r}: {key} must be finite, got {value!r}")
        out[key] = v
    _check_ranges(name, out)
    return out


def _check_ranges(name: str, p: dict[str, float]) -> None:
    if name == "clipped" and not p["limit"] > 0:
        raise ValueError(f"estimator 'clipped': limit must be > 0, got {p['limit']!r}")
    if name == "tanh" and not p["beta"] > 0:
        raise ValueError(f"estimator 'tanh': beta must be > 0, got {p['beta']!r}")
    if name == "reste":
        if not p["o"] >= 1:
            raise ValueError(f"estimator 'reste': o must be >= 1, got {p['o']!r}")
        if not p["t"] > 0:
            raise ValueError(f"estimator 'reste': t must be > 0, got {p['t']!r}")
        if not 0 < p["m"] < p["t"]:
            raise ValueError(f"estimator 'reste': m must be in (0, t) = (0, {p['t']}), "
                             f"got {p['m']!r}")


def surrogate_derivative(estimator: str, x: Any, **params: Any) -> np.ndarray:
    """g'(x), the backward pass of the estimator (see the module table), elementwise.

    Examples:
        >>> surrogate_derivative("reste", np.array([0.05, 1.0, 2.0]), o=1).tolist()
        [1.0, 1.0, 0.0]
    """
    p = estimator_params(estimator, **params)
    x = np.asarray(x, dtype=float)
    ax = np.abs(x)
    if estimator == "ste":
        return np.ones_like(x)
    if estimator == "clipped":
        return (ax <= p["limit"]).astype(float)
    if estimator == "tanh":
        th = np.tanh(p["beta"] * x)
        return p["beta"] * (1.0 - th * th)
    o, t, m = p["o"], p["t"], p["m"]
    with np.errstate(divide="ignore"):
        power = np.where(ax > 0, ax, 1.0) ** (1.0 / o - 1.0) / o
    return np.where(ax <= m, m ** (1.0 / o - 1.0), np.where(ax <= t, power, 0.0))


def surrogate_forward(estimator: str, x: Any, **params: Any) -> np.ndarray:
    """g(x), the equivalent forward of the estimator (what its estimating error compares
    with sign(x)); for ReSTE the paper's unrectified sign(x)|x|^(1/o).

    Examples:
        >>> surrogate_forward("reste", np.array([-0.25, 0.0, 4.0]), o=2).tolist()
        [-0.5, 0.0, 2.0]
    """
    p = estimator_params(estimator, **params)
    x = np.asarray(x, dtype=float)
    if estimator == "ste":
        return x.copy()
    if estimator == "clipped":
        return np.clip(x, -p["limit"], p["limit"])
    if estimator == "tanh":
        return np.tanh(p["beta"] * x)
    return np.sign(x) * np.abs(x) ** (1.0 / p["o"])


def reste_o(progress: float, o_end: float = 3.0, o_start: float = 1.0) -> float:
    """ReSTE's annealing of o: o_start + (1 - cos(pi p / 2)) (o_end - o_start), p in [0, 1].

    The reference code evaluates it per epoch with p = epoch / epochs.

    Examples:
        >>> reste_o(0.0), reste_o(1.0), round(reste_o(0.5), 4)
        (1.0, 3.0, 1.5858)
    """
    p = float(progress)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    if not (o_start >= 1 and o_end >= 1):
        raise ValueError(f"o_start and o_end must be >= 1, got {o_start!r}, {o_end!r}")
    return float(o_start + (1.0 - np.cos(np.pi * p / 2.0)) * (o_end - o_start))
