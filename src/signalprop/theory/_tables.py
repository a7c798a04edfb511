"""Tabulated one-dimensional Gaussian expectations of an activation, for whole grids.

For q on 160 points per decade (1e-12 .. 1e8) the table holds, with their derivatives in
x = log q (d/dx E[F(sqrt(q) z)] = E[F(sqrt(q) z) (z^2 - 1)] / 2, free of cancellation):

    V = E[phi(u)^2], D = E[phi'(u)^2], Vm = E[phi(u) phi(-u)], Dm = E[phi'(u) phi'(-u)].

A cubic Hermite interpolant in x is accurate to ~1e-11 relative. The fixed points of every
(sigma_w^2, sigma_b^2) pair are then found on the table (see :func:`q_star_grid`).
"""

from __future__ import annotations

import numpy as np

from signalprop.theory.activations import Activation
from signalprop.theory.gaussian import _evaluate, rule

_GRID = np.logspace(-12.0, 8.0, 3201)
NAMES = ("V", "D", "Vm", "Dm")


class KernelTable:
    """V, D, Vm, Dm on a log-q grid (plus q0), with cubic Hermite interpolation."""

    def __init__(self, act: Activation, q0: float) -> None:
        self.q = np.union1d(_GRID, [q0]) if q0 > 0 else _GRID
        self.x = np.log(self.q)
        kinks = tuple(sorted({*act.kinks, *(-k for k in act.kinks)}))
        s = np.sqrt(self.q)
        z, w = rule(np.zeros_like(s), s, kinks, act.scale)
        u = s[:, None] * z
        p, pm = _evaluate(act.fn, u, act.name), _evaluate(act.fn, -u, act.name)
        d, dm = _evaluate(act.d1, u, act.name), _evaluate(act.d1, -u, act.name)
        zz = 0.5 * (z * z - 1.0)
        self.val: dict[str, np.ndarray] = {}
        self.dx: dict[str, np.ndarray] = {}
        for name, f in zip(NAMES, (p * p, d * d, p * pm, d * dm), strict=True):
            fw = f * w
            self.val[name] = fw.sum(axis=1)
            self.dx[name] = (fw * zz).sum(axis=1)

    def __call__(self, name: str, q: np.ndarray) -> np.ndarray:
        """Interpolated ``name`` at q (which must lie inside the table's range)."""
        x = np.log(q)
        i = np.clip(np.searchsorted(self.x, x) - 1, 0, self.x.size - 2)
        return self.segment(name, i, x)

    def segment(self, name: str, i: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Cubic Hermite on [x_i, x_{i+1}] evaluated at x."""
        h = self.x[i + 1] - self.x[i]
        t = (x - self.x[i]) / h
        t2, t3 = t * t, t * t * t
        y0, y1 = self.val[name][i], self.val[name][i + 1]
        m0, m1 = self.dx[name][i] * h, self.dx[name][i + 1] * h
        return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * m0
                + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * m1)


def q_star_grid(
    table: KernelTable, sw: np.ndarray, sb: np.ndarray, q0: float, v0: float, t_zero: float,
    slope_zero: float,
) -> np.ndarray:
    """q* for every (sigma_b^2, sigma_w^2) pair, shape (n_b, n_w); NaN where unresolved.

    The fixed point reached from q0 is the first crossing of b + w V(q) - q = 0 in the
    direction the q-map moves. With g(q) = q - w V(q) on the table, running maxima (upward)
    or minima (downward) of g are monotone, so a binary search finds every sigma_b^2's
    first crossing at once; bisection on the cubic interpolant then pins it down.

    Args:
        table: the activation's :class:`KernelTable` (built with the same q0).
        sw, sb: 1-D grids. q0: input variance. v0: V(q0).
        t_zero, slope_zero: E[phi(0)^2] and dV/dq at q = 0 (for fixed points below 1e-12).
    """
    qt, v = table.q, table.val["V"]
    k0 = int(np.searchsorted(qt, q0)) if q0 > 0 else -1
    SW, SB = np.meshgrid(sw, sb)
    f0 = SB + SW * v0 - q0  # > 0: the iteration climbs from q0
    g = qt[None, :] - sw[:, None] * v[None, :]  # (n_w, M): crossing where g = sb
    lo = np.full(SW.shape, -1)
    up_run = np.maximum.accumulate(g[:, k0 + 1:], axis=1)  # above q0
    dn_run = np.minimum.accumulate(g[:, : max(k0, 0)][:, ::-1], axis=1)  # below q0
    for j in range(sw.size):
        i_up = np.searchsorted(up_run[j], sb, side="left")  # first index with g >= sb
        i_dn = np.searchsorted(-dn_run[j], -sb, side="left")  # first with g <= sb
        climb = f0[:, j] > 0
        ok_up = climb & (i_up < up_run.shape[1])
        ok_dn = ~climb & (i_dn < dn_run.shape[1])
        lo[ok_up, j] = k0 + i_up[ok_up]  # bracket [qt[lo], qt[lo + 1]]
        lo[ok_dn, j] = max(k0, 0) - 1 - i_dn[ok_dn]
    out = np.full(SW.shape, np.nan)
    out[(f0 > 0) & (lo < 0)] = np.inf  # climbs past the table's end (1e8): diverges
    below = (f0 < 0) & (lo < 0)  # falls below 1e-12: the q-map is linear there
    t0 = SB + SW * t_zero
    with np.errstate(divide="ignore", invalid="ignore"):
        lin = np.where(t0 > 0, t0 / np.maximum(1.0 - SW * slope_zero, 1e-300), 0.0)
    out[below] = lin[below]
    out[f0 == 0] = q0
    sel = lo >= 0
    if sel.any():
        out[sel] = _bisect(table, SW[sel], SB[sel], lo[sel])
    return out


def _bisect(table: KernelTable, w: np.ndarray, b: np.ndarray, lo: np.ndarray) -> np.ndarray:
    x0, x1 = table.x[lo], table.x[lo + 1]

    def f(x: np.ndarray) -> np.ndarray:
        return b + w * table.segment("V", lo, x) - np.exp(x)

    a, c = x0, x1
    fa = f(a)
    for _ in range(50):
        mid = 0.5 * (a + c)
        fm = f(mid)
        same = (fm > 0) == (fa > 0)
        a, fa, c = np.where(same, mid, a), np.where(same, fm, fa), np.where(same, c, mid)
    return np.exp(0.5 * (a + c))
