"""Gaussian expectations by composite Gauss-Legendre quadrature, vectorised and split at kinks.

E[f(m + s z)], z ~ N(0, 1), is integrated over z in [-Z, Z] (Z = 10: the Gaussian weight
beyond is below 1e-22) on panels whose edges are the union of

* a fixed Gaussian-scale grid in z (the weight's own features),
* a geometric grid in the pre-activation u = m + s z around 0 (the activation's features,
  which live at |u| ~ ``scale``, so q = s^2 from 1e-4 to 1e2 is resolved alike), and
* the activation's kinks, mapped to z (integrands are smooth on every panel, so corners
  such as ReLU's at 0 or relu6's at 6 cost no accuracy).

Each panel gets ``_ORDER`` Gauss-Legendre nodes. Every q (and mean) gets the same number of
panels (edges outside [-Z, Z] are clipped, leaving empty panels), so a whole batch of
variances is one NumPy expression. Two-dimensional expectations over correlated pairs are
nested one-dimensional rules (outer over u1, inner over u2 given u1) whose outer edges also
follow the inner function's features, which stay sharp when |c| -> 1.

Measured accuracy (tests/theory/test_gaussian.py, against mpmath at 30 digits): below 1e-12
absolute for the registered activations over q in [1e-4, 1e2] and c in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ArrayFn = Callable[[np.ndarray], Any]

_Z = 10.0
_ORDER = 12
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_ORDER)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Panel edges in z for the Gaussian weight: widths 1.5 to 2.5.
_Z_EDGES = np.array([0.0, 1.5, 3.0, 5.0, 7.5])
_Z_EDGES = np.concatenate([-_Z_EDGES[:0:-1], _Z_EDGES, [-_Z, _Z]])
# Panel edges in u (times the activation's scale): doubling from |u| = 1.
_U_EDGES = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
_U_EDGES = np.concatenate([-_U_EDGES[::-1], _U_EDGES])
# Grading around an inner function's kink, in units of its smoothing width sigma.
_GRADE = np.array([0.25, 1.0, 3.0, 8.0, 20.0, 45.0])
_GRADE = np.concatenate([-_GRADE[::-1], [0.0], _GRADE])


def _check_q(q: Any, name: str = "q") -> np.ndarray:
    arr = np.asarray(q, dtype=float)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(
            f"{name} must be a finite variance >= 0, got {float(arr[bad].flat[0])!r} "
            f"(valid range [0, inf))"
        )
    return arr


def _check_c(c: Any) -> np.ndarray:
    arr = np.asarray(c, dtype=float)
    bad = ~np.isfinite(arr) | (np.abs(arr) > 1.0)
    if bad.any():
        raise ValueError(
            f"c must be a correlation in [-1, 1], got {float(arr[bad].flat[0])!r} "
            "(valid range [-1, 1])"
        )
    return arr


def _panel_rule(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and Gaussian-weighted weights on sorted panel edges.

    Args:
        edges: (..., P + 1) sorted panel edges in z.

    Returns:
        nodes and weights, both (..., P * _ORDER); sum(w * g(z)) ~ E[g(z)].
    """
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]  # (..., P, 1)
    half = 0.5 * (hi - lo)
    z = (lo + hi) * 0.5 + half * _GL_X  # (..., P, n)
    w = half * _GL_W * (_INV_SQRT_2PI * np.exp(-0.5 * z * z))
    shape = (*edges.shape[:-1], -1)
    return z.reshape(shape), w.reshape(shape)


def _map_to_z(points_u: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """z = (u - m) / s for every point, clipped to [-Z, Z]; (..., K) from (...) m, s."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (points_u - m[..., None]) / s[..., None]
    z = np.where(np.isnan(z), 0.0, z)  # s = 0 and u = m: a single point, anywhere will do
    return np.clip(z, -_Z, _Z)


def rule(
    m: np.ndarray,
    s: np.ndarray,
    kinks: Sequence[float] = (),
    scale: float = 1.0,
    extra_z: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes z and weights w with sum(w * f(m + s z)) ~ E[f(m + s z)].

    Args:
        m, s: broadcastable arrays of means and standard deviations (s >= 0).
        kinks: points in u = m + s z where f is not smooth.
        scale: the activation's feature scale in u (1 for the registry's defaults).
        extra_z: (..., K) further panel edges in z (already clipped), e.g. another
            function's features.

    Returns:
        (z, w), each of shape (*broadcast(m, s).shape, N).
    """
    m, s = np.broadcast_arrays(np.asarray(m, dtype=float), np.asarray(s, dtype=float))
    pts_u = np.concatenate([_U_EDGES * scale, np.asarray(kinks, dtype=float)])
    edges = [np.broadcast_to(_Z_EDGES, (*m.shape, _Z_EDGES.size)), _map_to_z(pts_u, m, s)]
    if extra_z is not None:
        edges.append(np.broadcast_to(extra_z, (*m.shape, extra_z.shape[-1])))
    return _panel_rule(np.sort(np.concatenate(edges, axis=-1), axis=-1))


def _evaluate(f: ArrayFn, u: np.ndarray, what: str, q: np.ndarray | None = None) -> np.ndarray:
    """f(u), refusing overflow and NaN (``q``: the variance behind each node, for the message)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        vals = np.asarray(f(u), dtype=float)
    if vals.shape != u.shape:
        vals = np.broadcast_to(vals, u.shape)
    bad = ~np.isfinite(vals)
    if bad.any():
        at = f" at u = {u[bad].flat[0]:.6g}"
        if q is not None:
            at += f" for q = {float(np.broadcast_to(q, u.shape)[bad].flat[0])!r}"
        raise ValueError(
            f"activation {what!r} overflows (or returns NaN){at}: its Gaussian expectation "
            "is not finite in double precision there; valid q are those where it stays "
            "finite: use a smaller variance q (or sigma_w2) or a bounded activation"
        )
    return vals


def _std(q: np.ndarray) -> np.ndarray:
    # q = 0 is taken as the limit q -> 0+: u = 1e-300 z keeps the sign of z, so an integrand
    # that jumps at 0 gets the mean of its one-sided limits and a smooth one gets f(0).
    return np.where(q == 0, 1e-300, np.sqrt(q))


def gauss_expect(
    f: ArrayFn,
    q: float | np.ndarray = 1.0,
    kinks: Sequence[float] = (),
    *,
    mean: float | np.ndarray = 0.0,
    scale: float = 1.0,
    name: str = "f",
) -> Any:
    """E[f(mean + sqrt(q) z)] for z ~ N(0, 1), vectorised over ``q`` (and ``mean``).

    Composite Gauss-Legendre quadrature on panels split at ``kinks`` (see the module
    docstring); accurate to ~1e-12 for activation-like f (smooth on each panel, features
    at |u| ~ ``scale``, at most polynomial growth).

    Args:
        f: vectorised function of u = mean + sqrt(q) z (any array shape).
        q: variance(s) of u, >= 0; q = 0 means the limit q -> 0+ (at a jump of f at
            ``mean`` = 0: the mean of the one-sided limits).
        kinks: points in u where f (or a derivative) is not smooth.
        mean: mean(s) of u, broadcast against q.
        scale: where f's features are, in u (e.g. 1/beta for softplus(beta)).
        name: how error messages call f.

    Returns:
        A float for scalar inputs, else an ndarray of the broadcast shape.

    Raises:
        ValueError: q < 0 or non-finite; f overflows or returns NaN.

    Examples:
        >>> round(gauss_expect(lambda u: u * u, q=2.0), 12)
        2.0
        >>> gauss_expect(lambda u: np.maximum(u, 0.0), q=np.array([1.0, 4.0])) * np.sqrt(2 * np.pi)
        array([1., 2.])
    """
    q = _check_q(q)
    m = np.asarray(mean, dtype=float)
    if not np.isfinite(m).all():
        raise ValueError(f"mean must be finite, got {m[~np.isfinite(m)].flat[0]!r}")
    q, m = np.broadcast_arrays(q, m)
    s = _std(q)
    z, w = rule(m, s, kinks, scale)
    u = m[..., None] + s[..., None] * z
    out = np.sum(w * _evaluate(f, u, name, q[..., None]), axis=-1)
    return float(out) if out.ndim == 0 else out


def gauss_expect_many(
    fs: Sequence[ArrayFn],
    q: np.ndarray,
    kinks: Sequence[float] = (),
    *,
    scale: float = 1.0,
    name: str = "f",
) -> list[np.ndarray]:
    """[E[f(sqrt(q) z)] for f in fs] on one shared rule (fs share kinks and scale).

    Examples:
        >>> [round(float(x), 12) for x in gauss_expect_many([np.abs, np.square], np.array(1.0))]
        [0.797884560803, 1.0]
    """
    q = _check_q(q)
    s = _std(q)
    z, w = rule(np.zeros_like(q), s, kinks, scale)
    u = s[..., None] * z
    return [np.sum(w * _evaluate(f, u, name, q[..., None]), axis=-1) for f in fs]


def gauss_expect2(
    f: ArrayFn,
    g: ArrayFn,
    q: float | np.ndarray,
    c: float | np.ndarray,
    kinks_f: Sequence[float] = (),
    kinks_g: Sequence[float] = (),
    *,
    q2: float | np.ndarray | None = None,
    scale_f: float = 1.0,
    scale_g: float = 1.0,
    name: str = "f, g",
    max_chunk: int = 2_000_000,
) -> Any:
    """E[f(u1) g(u2)] for centred Gaussians with Var u1 = q, Var u2 = q2 (= q) and corr c.

    u1 = sqrt(q) z1 and u2 = sqrt(q2) (c z1 + sqrt(1 - c^2) z2): the outer rule runs over z1,
    the inner one over z2 given z1, i.e. E[f(u1) h(z1)] with h(z1) = E[g(m + sigma z2)],
    m = sqrt(q2) c z1, sigma = sqrt(q2 (1 - c^2)). The outer panels also split where g's
    kinks and features sit (z1 = k / (sqrt(q2) c)), graded in units of sigma, so |c| -> 1
    stays exact. Vectorised over broadcast (q, c, q2).

    Args:
        f: vectorised function of u1.
        g: vectorised function of u2.
        q: variance of u1 (>= 0); arrays broadcast with ``c``.
        c: correlation of u1 and u2, in [-1, 1].
        kinks_f: non-smooth points of f.
        kinks_g: non-smooth points of g.
        q2: variance of u2 (default: q).
        scale_f: feature scale of f (see :func:`gauss_expect`).
        scale_g: feature scale of g.
        name: how error messages call the integrand.
        max_chunk: largest number of integrand evaluations held in memory at once.

    Returns:
        A float for scalar inputs, else an ndarray of the broadcast shape.

    Examples:
        >>> relu = lambda u: np.maximum(u, 0.0)
        >>> round(gauss_expect2(relu, relu, 1.0, 0.0, (0.0,), (0.0,)) * 2 * np.pi, 12)
        1.0
    """
    q = _check_q(q)
    c = _check_c(c)
    q2 = q if q2 is None else _check_q(q2, "q2")
    q, c, q2 = np.broadcast_arrays(q, c, q2)
    shape = q.shape
    q, c, q2 = q.ravel(), c.ravel(), q2.ravel()
    out = np.empty(q.size)
    n_outer = (_Z_EDGES.size + _U_EDGES.size * 2 + _GRADE.size * (len(kinks_g) + 1)) * _ORDER
    per = n_outer * (_Z_EDGES.size + _U_EDGES.size + len(kinks_g)) * _ORDER
    step = max(1, max_chunk // per)
    for i in range(0, q.size, step):
        sl = slice(i, i + step)
        out[sl] = _expect2_flat(f, g, q[sl], c[sl], q2[sl], kinks_f, kinks_g,
                                scale_f, scale_g, name)
    out = out.reshape(shape)
    return float(out) if out.ndim == 0 else out


def _expect2_flat(
    f: ArrayFn, g: ArrayFn, q: np.ndarray, c: np.ndarray, q2: np.ndarray,
    kinks_f: Sequence[float], kinks_g: Sequence[float], scale_f: float, scale_g: float,
    name: str,
) -> np.ndarray:
    s1, s2 = _std(q), _std(q2)
    sigma = s2 * np.sqrt(np.maximum(0.0, (1.0 - c) * (1.0 + c)))  # inner std
    slope = s2 * c  # inner mean = slope * z1
    # Outer edges from g: its features, and its kinks graded in units of sigma.
    zero = np.zeros_like(q)
    g_feat = _map_to_z(_U_EDGES * scale_g, zero, slope)  # (B, K)
    graded = [k + sigma[:, None] * _GRADE for k in kinks_g]
    g_kinks = [_map_to_z(np.zeros(1), -gk, slope[:, None])[..., 0] for gk in graded]
    extra = np.concatenate([g_feat, *g_kinks], axis=-1) if kinks_g else g_feat
    z1, w1 = rule(zero, s1, kinks_f, scale_f, extra_z=extra)  # (B, N1)
    m_in = slope[:, None] * z1  # (B, N1)
    z2, w2 = rule(m_in, np.broadcast_to(sigma[:, None], m_in.shape), kinks_g, scale_g)
    u2 = m_in[..., None] + sigma[:, None, None] * z2  # (B, N1, N2)
    inner = np.sum(w2 * _evaluate(g, u2, name, q2[:, None, None]), axis=-1)  # (B, N1)
    return np.sum(w1 * _evaluate(f, s1[:, None] * z1, name, q[:, None]) * inner, axis=-1)
