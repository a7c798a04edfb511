"""Order-to-chaos phase diagrams: chi_1 and xi_c over a grid of (sigma_w^2, sigma_b^2).

Fast path for whole grids (a 100 x 100 diagram in well under a second on 2 cores):

1. q*: E[phi(sqrt(q) z)^2] and its q-derivative are tabulated once on 80 points per decade
   (q = 1e-12 .. 1e8, plus q0). For every sigma_w^2, running maxima / minima of
   q - sigma_w^2 E[phi^2] over the table locate, by binary search, the first crossing of
   every sigma_b^2 in the direction the q-map moves from q0 (the same fixed point as
   :func:`~signalprop.theory.q_star`); a cubic Hermite interpolant in log q pins it down.
2. chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] by quadrature at every q*.
3. In the chaotic phase, c* and chi_c from the Mehler series of the kernel at each q*
   (:mod:`signalprop.theory._hermite`), so every trial c is a polynomial evaluation; closed
   forms for the ReLU family and erf.

Measured against the pointwise :func:`~signalprop.theory.mean_field`
(tests/theory/test_phase.py): q* and chi_1 to ~1e-9 relative, xi_c in the chaotic phase
to ~1e-4 relative where c* <= 0.99 (the series converges slowly as c* -> 1, i.e. right at
the phase boundary, where xi_c diverges anyway).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from signalprop.theory import _checks
from signalprop.theory._hermite import MehlerKernel
from signalprop.theory._tables import KernelTable, q_star_grid
from signalprop.theory.activations import Activation, get_activation
from signalprop.theory.expectations import (
    ActivationLike,
    expect_dphi2,
    expect_dphi_dphi,
    expect_phi2,
    expect_phi2_dq,
    expect_phi_phi,
)
from signalprop.theory.fixed_points import _CRIT_TOL, _Q_MAX, q_star
from signalprop.theory.gaussian import gauss_expect


@dataclass(frozen=True)
class PhaseDiagram:
    """chi_1 and xi_c over a (sigma_b^2, sigma_w^2) grid; arrays are (n_b, n_w).

    Attributes:
        activation: the activation's name.
        sigma_w2, sigma_b2: the grids (x and y axes).
        q_star, c_star, chi_1, chi_c, xi_c: arrays of shape (len(sigma_b2), len(sigma_w2));
            row i belongs to sigma_b2[i], column j to sigma_w2[j]. Conventions as in
            :class:`~signalprop.theory.MeanField` (xi_c = inf: no exponential scale).

    Examples:
        >>> pd = phase_diagram("relu", [1.0, 2.0, 3.0], [0.0])
        >>> pd.chi_1.tolist()  # ordered, critical, chaotic
        [[0.5, 1.0, 1.5]]
    """

    activation: str
    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    q_star: np.ndarray
    c_star: np.ndarray
    chi_1: np.ndarray
    chi_c: np.ndarray
    xi_c: np.ndarray

    @property
    def critical_sigma_w2(self) -> np.ndarray:
        """Per sigma_b^2 row, the sigma_w^2 where chi_1 crosses 1 (linear interpolation
        between grid columns; NaN where the row does not cross)."""
        out = np.full(self.sigma_b2.size, np.nan)
        for i, row in enumerate(self.chi_1):
            s = np.flatnonzero(np.diff(np.sign(row - 1.0)) != 0)
            if s.size:
                j = s[0]
                t = (1.0 - row[j]) / (row[j + 1] - row[j])
                out[i] = self.sigma_w2[j] + t * (self.sigma_w2[j + 1] - self.sigma_w2[j])
        return out


def _grid(name: str, values: np.ndarray | list[float], positive: bool) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D grid, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0))
    if bad.any():
        rng = "(0, inf)" if positive else "[0, inf)"
        raise ValueError(f"{name} values must be finite and in {rng}, got {float(arr[bad][0])!r}")
    return arr


def _q_star_homogeneous(act: Activation, sw: np.ndarray, sb: np.ndarray, q0: float) -> np.ndarray:
    gain = sw * 0.5 * (act.slopes[0] ** 2 + act.slopes[1] ** 2)  # type: ignore[index]
    gain, sb = np.broadcast_arrays(gain[None, :], sb[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(gain < 1.0, sb / (1.0 - gain), np.inf)
    out = np.where((gain == 1.0) & (sb == 0), q0, out)
    return np.where((gain > 1.0) & (sb == 0) & (q0 == 0), 0.0, out)


def _c_star_batch(
    kernel: object, qs: np.ndarray, sw: np.ndarray, sb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Largest root below 1 of (sb + sw K(c)) / (sb + sw K(1)) = c, and chi_c there.

    Normalising by the kernel's own value at c = 1 (= sb + sw E[phi^2] = q*) makes c = 1 an
    exact fixed point, so the sign of the gap just below 1 is not lost to rounding.
    """
    norm = sb + sw * kernel(np.ones_like(qs))[0]  # type: ignore[operator]
    grid = np.concatenate([1.0 - 10.0 ** (-np.arange(24, 0, -1) / 2.0),
                           np.linspace(0.5, -1.0, 7)])  # descending
    lo = np.full(qs.size, -1.0)
    hi = np.full(qs.size, 1.0)
    found = np.zeros(qs.size, dtype=bool)
    prev = np.full(qs.size, 1.0)
    for cg in grid:
        c = np.full(qs.size, cg)
        k, _ = kernel(c)  # type: ignore[operator]
        pos = (sb + sw * k) / norm - c >= 0
        new = pos & ~found
        lo[new], hi[new] = cg, prev[new]
        found |= pos
        prev[:] = cg
        if found.all():
            break
    at_one = found & (hi == 1.0)  # c* within 1e-12 of 1
    # Safeguarded Newton on the bracket: h(c) = (sb + sw K(c)) / norm - c, h' = sw K' / norm - 1.
    c = 0.5 * (lo + hi)
    for _ in range(12):
        k, dk = kernel(c)  # type: ignore[operator]
        h = (sb + sw * k) / norm - c
        pos = h >= 0
        lo, hi = np.where(pos, c, lo), np.where(pos, hi, c)
        slope = sw * dk / norm - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            step = c - h / slope
        # a step a rounding error outside the bracket is a converged root on its edge
        tol = 1e-12 * (1.0 + np.abs(c))
        inside = np.isfinite(step) & (step >= lo - tol) & (step <= hi + tol)
        c = np.where(inside, np.clip(step, lo, hi), 0.5 * (lo + hi))
    c_s = np.where(at_one, 1.0, c)
    _, dk = kernel(c_s)  # type: ignore[operator]
    return c_s, sw * dk / qs


def _lookup(act: Activation, table: KernelTable | None, name: str, q: np.ndarray,
            direct: object) -> np.ndarray:
    """Table value of ``name`` at q (q inside the table), else direct quadrature; q = inf
    takes the value at q = 1e12 (the q -> inf limit used by MeanField)."""
    q = np.asarray(q, dtype=float)
    out = np.empty_like(q)
    inside = np.zeros(q.shape, dtype=bool)
    if table is not None:
        inside = (q >= table.q[0]) & (q <= table.q[-1])
        out[inside] = table(name, q[inside])
    rest = ~inside
    if rest.any():
        qr = np.where(np.isinf(q[rest]), _Q_MAX, q[rest])
        fns = {"V": lambda u: act.fn(u) ** 2, "D": lambda u: act.d1(u) ** 2,
               "Vm": lambda u: act.fn(u) * act.fn(-u), "Dm": lambda u: act.d1(u) * act.d1(-u)}
        kinks = tuple(sorted({*act.kinks, *(-k for k in act.kinks)}))
        if name in ("V", "D") and act.closed_form:
            out[rest] = (expect_phi2 if name == "V" else expect_dphi2)(act, qr)
        else:
            out[rest] = gauss_expect(fns[name], qr, kinks, scale=act.scale, name=act.name)
    return out


class _ClosedKernel:
    def __init__(self, act: Activation, q: np.ndarray) -> None:
        self.act, self.q = act, q

    def __call__(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(expect_phi_phi(self.act, self.q, c)),
                self.q * np.asarray(expect_dphi_dphi(self.act, self.q, c)))


def phase_diagram(
    activation: ActivationLike,
    sigma_w2_grid: np.ndarray | list[float],
    sigma_b2_grid: np.ndarray | list[float],
    *,
    q0: float = 1.0,
    correlations: bool = True,
) -> PhaseDiagram:
    """chi_1 and the correlation depth scale xi_c over a (sigma_w^2, sigma_b^2) grid.

    chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]; xi_c = -1 / log(sigma_w^2 E[phi'(u1) phi'(u2)])
    at the stable c* (= -1 / log chi_1 in the ordered phase). Conventions and accuracy: see
    the module docstring and :class:`~signalprop.theory.MeanField`.

    Args:
        activation: registered name, Activation or callable.
        sigma_w2_grid: weight variances (> 0), the x axis.
        sigma_b2_grid: bias variances (>= 0), the y axis.
        q0: input pre-activation variance (selects the fixed point).
        correlations: compute c* and xi_c (False: only q* and chi_1; c_star, chi_c and
            xi_c are then NaN-free placeholders: c* = 1, chi_c = chi_1).

    Returns:
        A :class:`PhaseDiagram` with (len(sigma_b2_grid), len(sigma_w2_grid)) arrays.

    Examples:
        >>> pd = phase_diagram("tanh", np.linspace(0.5, 4, 8), [0.0, 0.05])
        >>> pd.chi_1.shape, bool(pd.chi_1[0, 0] < 1 < pd.chi_1[0, -1])
        ((2, 8), True)
    """
    act = get_activation(activation)
    sw = _grid("sigma_w2_grid", sigma_w2_grid, positive=True)
    sb = _grid("sigma_b2_grid", sigma_b2_grid, positive=False)
    q0 = _checks.non_negative("q0", q0)
    SW, SB = np.meshgrid(sw, sb)  # (n_b, n_w)
    table = None
    if act.closed_form == "homogeneous":
        qs = _q_star_homogeneous(act, sw, sb, q0)
    else:
        table = KernelTable(act, q0)
        qs = q_star_grid(table, sw, sb, q0, float(expect_phi2(act, q0)),
                         float(expect_phi2(act, 0.0)), float(expect_phi2_dq(act, 0.0)))
        # The table ends at 1e8; anything left unresolved gets the pointwise solver.
        for i, j in zip(*np.nonzero(np.isnan(qs)), strict=True):
            qs[i, j] = q_star(act, SW[i, j], SB[i, j], q0=q0)
    finite = np.isfinite(qs)
    d_star = _lookup(act, table, "D", qs, lambda q: expect_dphi2(act, q))
    chi_1 = SW * d_star
    c_s = np.ones_like(qs)
    chi_c = np.where(finite, chi_1, 1.0)
    # No bias and q* in {0, inf} (or a scale-invariant phi): the normalised c-map is
    # marginal at c = 1 (see MeanField); no finite xi_c.
    marginal = ~finite | ((SB == 0) & ((qs == 0) | (act.closed_form == "homogeneous")))
    chi_c[marginal] = 1.0
    chaotic = (chi_1 > 1.0 + _CRIT_TOL) & ~marginal & (qs > 0)
    if chaotic.any() and correlations:
        qc = qs[chaotic]
        if act.closed_form:
            kern: object = _ClosedKernel(act, qc)
        else:
            pairs = [(n, _lookup(act, table, n, qc, None)) for n in ("V", "Vm", "Dm")]
            kern = MehlerKernel(act, qc, d=d_star[chaotic], **{k.lower(): v for k, v in pairs})
        c_s[chaotic], chi_c[chaotic] = _c_star_batch(kern, qc, SW[chaotic], SB[chaotic])
    with np.errstate(divide="ignore"):
        xi_c = np.where((chi_c > 0) & (chi_c < 1), -1.0 / np.log(np.clip(chi_c, 1e-300, 1)),
                        np.inf)
    xi_c = np.where(chi_c == 0, 0.0, xi_c)
    return PhaseDiagram(act.name, sw, sb, qs, c_s, chi_1, chi_c, xi_c)
