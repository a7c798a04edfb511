"""What attention does to the size of its output as the sequence grows.

One query attends to ``L`` keys with scores ``s_j`` and values ``v_j``; the output is
``o = sum_j w_j v_j`` with weights ``w = normalize(s)``:

* ``softmax``: ``w_j = exp(s_j) / sum_k exp(s_k)``, so ``sum_j w_j = 1`` at every length:
  the output is a weighted *average* of the values and a count (how many keys match) is
  lost (Ouellette, Pfister & Jud, 2023);
* ``none`` / ``relu`` / ``sigmoid``: ``w_j = s_j``, ``max(s_j, 0)``, ``1 / (1 + exp(-s_j))``
  act on each score alone, so ``sum_j w_j`` grows like ``L E[w]``: the output is a *sum*
  and carries the count.

With scores i.i.d. ``N(mu, sigma^2)`` and values i.i.d. with mean ``m`` and variance
``tau^2``, independent of the scores, and ``W = sum_j w_j``:

    E[o]   = m E[W]
    E[o^2] = tau^2 E[sum_j w_j^2] + m^2 E[W^2]

elementwise:  E[W] = L E[w],  E[W^2] = L E[w^2] + L (L - 1) E[w]^2,  E[sum w^2] = L E[w^2]
softmax:      E[W] = E[W^2] = 1,
              E[sum_j w_j^2] = L int_0^inf t E[e^(2s) e^(-t e^s)] E[e^(-t e^s)]^(L-1) dt

(from ``1 / X^2 = int_0^inf t e^(-t X) dt``), which is ``1 / L`` at ``sigma = 0`` and about
``e^(sigma^2) / L`` for large ``L``. So the second moment of an unnormalized output grows
like ``L`` (zero-mean values) or ``L^2`` (values with a mean, such as repeated tokens),
while a softmax output tends to ``m^2``. The one-dimensional expectations over the score
are trapezoidal sums on a fine grid of the standard normal variable (the integrands are
smooth and Gaussian-damped, so the sums converge geometrically).

Examples:
    >>> w = attention_weights([1, 10], "none", score_mean=1.0, score_std=0.0)
    >>> w["sum_mean"].tolist(), w["sum_sq_mean"].tolist()
    ([1.0, 10.0], [1.0, 100.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from signalprop.results.sequence import LengthBlockStats, LengthSPPResult

NORMALIZATIONS = ("softmax", "none", "sigmoid", "relu")

_Z = np.linspace(-10.0, 10.0, 1601)
_WZ = np.exp(-0.5 * _Z**2) / math.sqrt(2 * math.pi) * (_Z[1] - _Z[0])


def _lengths(lengths: Sequence[int] | int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(lengths))
    if arr.ndim != 1 or arr.size == 0 or not np.all(arr == np.floor(arr)) or np.any(arr < 1):
        raise ValueError(f"lengths must be integers >= 1, got {lengths!r}")
    return arr.astype(np.int64)


def _check(normalize: str, score_std: float) -> None:
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if not (math.isfinite(score_std) and score_std >= 0):
        raise ValueError(f"score_std must be a finite number >= 0, got {score_std!r}")


def _elementwise(normalize: str, s: np.ndarray) -> np.ndarray:
    if normalize == "none":
        return s
    if normalize == "relu":
        return np.maximum(s, 0.0)
    return 0.5 * (1.0 + np.tanh(0.5 * s))  # sigmoid without overflow


def _softmax_sq_sum(lengths: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """E[sum_j a_j^2] for a = softmax of L i.i.d. N(mu, sigma^2) scores."""
    if sigma == 0.0:
        return 1.0 / lengths
    s = mu + sigma * _Z  # (Z,)
    # t = e^u; the integrand in u is t^2 E[e^(2s - t e^s)] E[e^(-t e^s)]^(L-1); with
    # y = s + u its first factor is E[h(y)], h(y) = exp(2y - e^y), negligible outside
    # y in [-40, 5].
    u = np.linspace(-40.0 - s.max(), 5.0 - s.min(), 1201)
    y = u[:, None] + s[None, :]  # (U, Z)
    h = np.exp(2.0 * y - np.exp(np.minimum(y, 50.0))) @ _WZ
    one_minus_phi = -np.expm1(-np.exp(np.minimum(y, 50.0))) @ _WZ
    log_phi = np.log1p(-np.minimum(one_minus_phi, 1.0 - 1e-300))
    du = u[1] - u[0]
    out = [float(L * np.sum(h * np.exp((L - 1) * log_phi)) * du) for L in lengths]
    return np.asarray(out)


def attention_weights(
    lengths: Sequence[int] | int,
    normalize: str = "softmax",
    *,
    score_mean: float = 0.0,
    score_std: float = 1.0,
) -> dict[str, np.ndarray]:
    """Moments of the attention weights of one query over ``L`` keys (module docstring).

    Args:
        lengths: the numbers of keys ``L`` (integers >= 1).
        normalize: "softmax", "none", "sigmoid" or "relu".
        score_mean: mean of the i.i.d. Gaussian scores.
        score_std: their standard deviation (>= 0).

    Returns:
        ``{"sum_mean": E[W], "sum_sq_mean": E[W^2], "sq_sum_mean": E[sum_j w_j^2]}``, each
        an array over ``lengths`` (``W = sum_j w_j``).

    Examples:
        >>> attention_weights([1, 4], "softmax", score_std=0.0)["sq_sum_mean"].tolist()
        [1.0, 0.25]
    """
    ell = _lengths(lengths)
    _check(normalize, float(score_std))
    if normalize == "softmax":
        one = np.ones(ell.size)
        return {"sum_mean": one, "sum_sq_mean": one,
                "sq_sum_mean": _softmax_sq_sum(ell, float(score_mean), float(score_std))}
    w = _elementwise(normalize, float(score_mean) + float(score_std) * _Z)
    if score_std == 0:
        ew, ew2 = float(w[0]), float(w[0]) ** 2
    else:
        ew, ew2 = float(w @ _WZ), float(w**2 @ _WZ)
    ell_f = ell.astype(np.float64)
    return {"sum_mean": ell_f * ew, "sum_sq_mean": ell_f * ew2 + ell_f * (ell_f - 1) * ew**2,
            "sq_sum_mean": ell_f * ew2}


def attention_sum(
    lengths: Sequence[int] | int,
    normalize: str = "softmax",
    *,
    score_mean: float = 0.0,
    score_std: float = 1.0,
    value_mean: float = 0.0,
    value_std: float = 1.0,
    name: str = "attention",
) -> LengthSPPResult:
    """Predicted length SPP of an attention output ``o = sum_j w_j v_j`` (module docstring).

    The record at length ``L`` holds ``avg_sq_mean = E[o]^2`` and ``avg_var = Var(o)`` of
    one output channel whose values have mean ``value_mean`` and standard deviation
    ``value_std``; for several channels, pass the root mean square of their standard
    deviations (``E[o^2]`` is linear in ``tau^2``). ``meta["weight_sum"]`` holds ``E[W]``.

    Args:
        lengths: sequence lengths (numbers of keys).
        normalize: "softmax", "none", "sigmoid" or "relu".
        score_mean: the Gaussian scores' mean.
        score_std: their standard deviation.
        value_mean: the values' mean.
        value_std: their standard deviation.
        name: the record name (to match a measured block's name in a plot).

    Returns:
        :class:`~signalprop.results.LengthSPPResult` with ``kind="predicted"``.

    Examples:
        >>> r = attention_sum([4, 16], "none", value_mean=1.0, score_mean=0.5, score_std=0.0)
        >>> [rec.avg_sq_mean for rec in r.records]    # (L * 0.5 * 1)^2
        [4.0, 64.0]
        >>> r = attention_sum([4, 16], "softmax", value_mean=1.0, value_std=0.0)
        >>> [rec.avg_sq_mean for rec in r.records]
        [1.0, 1.0]
    """
    if not (math.isfinite(value_std) and value_std >= 0):
        raise ValueError(f"value_std must be a finite number >= 0, got {value_std!r}")
    ell = _lengths(lengths)
    w = attention_weights(ell, normalize, score_mean=score_mean, score_std=score_std)
    mean = value_mean * w["sum_mean"]
    second = value_std**2 * w["sq_sum_mean"] + value_mean**2 * w["sum_sq_mean"]
    var = np.maximum(second - mean**2, 0.0)
    records = [LengthBlockStats(name, 0, int(L), float(m * m), float(v), math.sqrt(float(q)))
               for L, m, v, q in zip(ell, mean, var, second)]
    meta: dict[str, Any] = {
        "normalize": normalize, "score_mean": float(score_mean), "score_std": float(score_std),
        "value_mean": float(value_mean), "value_std": float(value_std),
        "weight_sum": [float(x) for x in w["sum_mean"]]}
    return LengthSPPResult(f"{normalize} attention (predicted)", records, kind="predicted",
                           meta=meta)
