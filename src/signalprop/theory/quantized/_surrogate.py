"""The backward gain of a surrogate gradient: E[g'(sqrt(q) z)^2], z ~ N(0, 1).

Through y = sign(x) with a straight-through estimator, dL/dx = g'(x) dL/dy. When the
upstream gradient is independent of x (the usual mean-field assumption at
initialization), the gradient's second moment is multiplied by

    S(q) = E[g'(X)^2],   X ~ N(0, q),

so a deep 1W/1A network scales gradients per layer by chi = G sigma_w^2 S(q_l) (G the
weights' variance gain). Closed forms (P(|X| <= a) = erf(a / sqrt(2q))):

* ``ste``: S = 1.
* ``clipped``: S = erf(limit / sqrt(2q)).
* ``reste``: with p = 2/o - 2 and E[|X|^p; a < |X| <= b]
  = (2q)^(p/2) / sqrt(pi) (Gamma(s, a^2/2q) - Gamma(s, b^2/2q)), s = (p + 1) / 2 = 1/o - 1/2
  (upper incomplete gamma; for s <= 0 through Gamma(s, x) = (Gamma(s + 1, x) - x^s e^-x) / s
  and Gamma(0, x) = E_1(x)),

      S = m^p erf(m / sqrt(2q)) + o^-2 E[|X|^p; m < |X| <= t].

* ``tanh``: S = beta^2 E[(1 - tanh(beta X)^2)^2] has no closed form; it is integrated by
  Gauss-Hermite quadrature (:func:`signalprop.theory.gauss_expect`).

Examples:
    >>> surrogate_gain("ste", 2.0)
    1.0
    >>> round(surrogate_gain("clipped", 1.0), 4)   # P(|z| <= 1)
    0.6827
    >>> round(surrogate_gain("reste", 1.0, o=1.0), 4) == round(surrogate_gain("clipped", 1.0,
    ...                                                                      limit=1.5), 4)
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from signalprop.theory.gaussian import _check_q, gauss_expect
from signalprop.theory.quantized._estimators import check_estimator, estimator_params


def _upper_gamma(s: float, x: np.ndarray) -> np.ndarray:
    """Gamma(s, x) = int_x^inf u^(s-1) e^-u du for s > -1, x > 0 (x = inf gives 0)."""
    x = np.asarray(x, dtype=float)
    if s > 0:
        return special.gammaincc(s, x) * special.gamma(s)
    if s == 0:
        return special.exp1(x)
    with np.errstate(over="ignore", invalid="ignore"):
        tail = np.where(np.isinf(x), 0.0, x ** s * np.exp(-x))
    return (special.gammaincc(s + 1.0, x) * special.gamma(s + 1.0) - tail) / s


def _power_band(p: float, q: np.ndarray, a: float, b: float) -> np.ndarray:
    """E[|X|^p; a < |X| <= b] for X ~ N(0, q), 0 < a < b, p > -2."""
    s = (p + 1.0) / 2.0
    lo, hi = a * a / (2.0 * q), b * b / (2.0 * q)
    return (2.0 * q) ** (p / 2.0) / math.sqrt(math.pi) * (_upper_gamma(s, lo) - _upper_gamma(s, hi))


def surrogate_gain(estimator: str, q: Any, **params: Any) -> Any:
    """S(q) = E[g'(sqrt(q) z)^2]: the factor by which a sign quantizer with this surrogate
    gradient multiplies the gradient's second moment (see the module docstring).

    Args:
        estimator: ``"ste"``, ``"clipped"``, ``"tanh"`` or ``"reste"``.
        q: the variance of the quantizer's input, > 0 (float or array).
        **params: the estimator's parameters (``limit``; ``beta``; ``o``, ``t``, ``m``).

    Returns:
        S(q), a float for a scalar q, else an array of q's shape.

    Examples:
        >>> surrogate_gain("reste", [0.25, 1.0], o=3.0).round(3).tolist()
        [3.892, 2.016]
    """
    name = check_estimator(estimator)
    p = estimator_params(name, **params)
    q_arr = _check_q(q)
    if np.any(q_arr <= 0):
        raise ValueError(f"q must be > 0 (the variance of the quantizer's input), got {q!r}")
    if name == "ste":
        out = np.ones_like(q_arr)
    elif name == "clipped":
        out = special.erf(p["limit"] / np.sqrt(2.0 * q_arr))
    elif name == "tanh":
        beta = p["beta"]
        out = np.asarray(gauss_expect(lambda u: (beta * (1.0 - np.tanh(beta * u) ** 2)) ** 2,
                                      q_arr, scale=1.0 / beta, name="tanh surrogate"))
    else:
        o, t, m = p["o"], p["t"], p["m"]
        power = 2.0 / o - 2.0
        inner = m ** power * special.erf(m / np.sqrt(2.0 * q_arr))
        out = inner + _power_band(power, q_arr, m, t) / (o * o)
    out = np.asarray(out, dtype=float)
    return float(out) if out.ndim == 0 else out
