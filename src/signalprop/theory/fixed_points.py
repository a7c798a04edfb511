"""Fixed points of the mean-field maps, susceptibilities and depth scales.

At the fixed point q* of the q-map (the one reached from the input variance q0):

    chi_1   = sigma_w^2 E[phi'(u)^2]            (= chi_perp; < 1 ordered, > 1 chaotic)
    chi_par = sigma_w^2 d/dq E[phi(u)^2]         (slope of the q-map at q*)
    chi_c   = sigma_w^2 E[phi'(u1) phi'(u2)]     at the stable correlation c*
    xi_q = -1 / log chi_par,  xi_c = -1 / log chi_c,  xi_grad = -1 / log chi_1

(Schoenholz et al. 2017). In the ordered phase c* = 1 and chi_c = chi_1. xi_grad < 0 means
gradients grow with depth (as exp(l / |xi_grad|)); a depth scale is ``inf`` where the
approach is slower than exponential (chi = 1, power laws).

Examples:
    >>> mf = mean_field("tanh", sigma_w2=1.5, sigma_b2=0.05)
    >>> mf.phase, round(mf.chi_1, 3), round(mf.xi_c, 2)
    ('ordered', 0.939, 15.79)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from signalprop.theory import _checks
from signalprop.theory.activations import Activation, get_activation
from signalprop.theory.expectations import (
    ActivationLike,
    expect_dphi2,
    expect_dphi_dphi,
    expect_phi2,
    expect_phi2_dq,
    expect_phi_phi,
)

_Q_MAX = 1e12  # beyond this the q-map is reported as divergent (q* = inf)
_Q_MIN = 1e-30  # below this the downward scan checks q = 0 directly
_CRIT_TOL = 1e-9  # |chi_1 - 1| below this is "critical"
_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class MeanField:
    """Mean-field fixed point and depth scales of one (activation, sigma_w^2, sigma_b^2).

    Attributes:
        activation: the activation's name.
        sigma_w2, sigma_b2: the initialization.
        q_star: fixed point of the q-map reached from q0 (0: the signal dies out;
            inf: the q-map diverges).
        c_star: stable fixed point of the c-map (1 in the ordered phase).
        chi_1, chi_par, chi_c: susceptibilities (module docstring).
        xi_q, xi_c, xi_grad: depth scales in layers (inf: no exponential scale;
            xi_grad < 0: exploding gradients).
        phase: "ordered" (chi_1 < 1), "critical" or "chaotic" (chi_1 > 1).

    Examples:
        >>> mf = mean_field("relu", sigma_w2=2.0)
        >>> mf.phase, mf.q_star, mf.chi_1
        ('critical', 1.0, 1.0)
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float
    chi_1: float
    chi_par: float
    chi_c: float
    xi_q: float
    xi_c: float
    xi_grad: float
    phase: str


def _depth_scale(chi: float) -> float:
    return -1.0 / math.log(chi) if 0.0 < chi < 1.0 else (0.0 if chi == 0.0 else math.inf)


def _homogeneous_q_star(act: Activation, sw: float, sb: float, q0: float) -> float:
    a_plus, a_minus = act.slopes  # type: ignore[misc]
    gain = sw * 0.5 * (a_plus**2 + a_minus**2)  # q_{l+1} = sb + gain * q_l
    if abs(gain - 1.0) <= 4 * _EPS:
        return q0 if sb == 0 else math.inf
    if gain < 1.0:
        return sb / (1.0 - gain)
    return 0.0 if sb == 0 and q0 == 0 else math.inf


def q_star(
    activation: ActivationLike, sigma_w2: float, sigma_b2: float = 0.0, *, q0: float = 1.0
) -> float:
    """The fixed point q* = sigma_b^2 + sigma_w^2 E[phi(sqrt(q*) z)^2] reached from ``q0``.

    The q-map is increasing, so iterating it from q0 moves monotonically to the nearest
    fixed point on the side where it starts moving; that root is bracketed on a geometric
    grid (ratio 10^(1/16)) and refined with Brent's method to machine precision.
    Closed form for positively homogeneous activations: q* = sigma_b^2 / (1 - sigma_w^2 k),
    k = (a+^2 + a-^2)/2.

    Args:
        activation: registered name, Activation or callable.
        sigma_w2: > 0. sigma_b2: >= 0. q0: the input's pre-activation variance, >= 0.

    Returns:
        q* (0 when the signal dies out, ``inf`` when the q-map diverges).

    Examples:
        >>> q_star("tanh", 0.5)  # ordered phase without bias: the signal dies out
        0.0
        >>> round(q_star("relu", 1.0, 0.5), 12)
        1.0
    """
    sw = _checks.positive("sigma_w2", sigma_w2)
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    q0 = _checks.non_negative("q0", q0)
    act = get_activation(activation)
    if act.closed_form == "homogeneous":
        return _homogeneous_q_star(act, sw, sb, q0)
    qmap = _QMap(act, sw, sb)
    s0 = int(qmap.sign(np.asarray(q0)))
    if s0 == 0:
        return q0
    return qmap.climb(q0) if s0 > 0 else qmap.fall(q0)


class _QMap:
    """The q-map T(q) = sigma_b^2 + sigma_w^2 E[phi(sqrt(q) z)^2]: where T(q) - q changes
    sign (up to rounding) on a geometric grid, and the root there."""

    STEPS = 10.0 ** (np.arange(1, 17) / 16.0)  # one decade in 16 geometric steps

    def __init__(self, act: Activation, sw: float, sb: float) -> None:
        self.act, self.sw, self.sb = act, sw, sb
        self.t_zero = float(sb + sw * expect_phi2(act, 0.0))  # the q-map at q = 0

    def excess(self, q: np.ndarray | float) -> np.ndarray:
        return self.sb + self.sw * np.asarray(expect_phi2(self.act, q)) - np.asarray(q)

    def sign(self, q: np.ndarray) -> np.ndarray:
        # NOTE: |T(q) - q| within a few ulps of q is a fixed point to double precision
        # (e.g. relu6 at sigma_w^2 = 2 moves q by ~1e-19 per layer near q = 0.4).
        f = self.excess(q)
        return np.where(np.abs(f) <= 8 * _EPS * np.maximum(q, self.sb), 0, np.sign(f))

    def climb(self, q0: float) -> float:
        """The iteration climbs from ``q0``: the first sign change above it."""
        lo = q0 if q0 > 0 else self.t_zero
        if lo == 0.0:  # sigma_b^2 = 0 and phi(0) = 0: q = 0 is a fixed point
            return 0.0
        while lo < _Q_MAX:
            grid = lo * self.STEPS
            hit = np.flatnonzero(self.sign(grid) <= 0)
            if hit.size:
                i = hit[0]
                return self.root(lo if i == 0 else grid[i - 1], grid[i])
            lo = float(grid[-1])
        return math.inf

    def fall(self, q0: float) -> float:
        """The iteration falls from ``q0``: the first sign change below it."""
        hi = q0
        while hi > _Q_MIN:
            grid = hi / self.STEPS
            hit = np.flatnonzero(self.sign(grid) >= 0)
            if hit.size:
                i = hit[0]
                return self.root(grid[i], hi if i == 0 else grid[i - 1])
            hi = float(grid[-1])
        return self.root(0.0, hi) if self.t_zero > 0 else 0.0

    def root(self, lo: float, hi: float) -> float:
        """The fixed point in [lo, hi]: Brent's method, or bisection to the rounding band."""
        if float(self.excess(lo)) * float(self.excess(hi)) < 0:
            r = float(optimize.brentq(self.excess, lo, hi, xtol=1e-300, rtol=4 * _EPS,
                                      maxiter=500))
        else:  # one end is inside the rounding band: bisect to the band's edge
            s_lo = self.sign(np.asarray(lo))
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if not lo < mid < hi:
                    break
                if self.sign(np.asarray(mid)) == s_lo:
                    lo = mid
                else:
                    hi = mid
            r = float(hi)
        # Below ~1e-14 (with no bias and phi(0) = 0) a root is indistinguishable from 0.
        return 0.0 if r < 1e-14 and self.t_zero == 0.0 else r


def c_star(
    activation: ActivationLike, sigma_w2: float, sigma_b2: float = 0.0, *, q0: float = 1.0
) -> float:
    """The stable fixed point c* of the correlation map at q*.

    c = 1 is always a fixed point; it is stable when chi_1 <= 1 (ordered phase). In the
    chaotic phase the stable c* < 1 is the largest root of c-map(c) = c below 1, bracketed
    on a grid (1 - 10^-k/2 down to -1) and refined with Brent's method.

    Examples:
        >>> c_star("tanh", 0.8, 0.1)
        1.0
        >>> 0 < c_star("tanh", 4.0, 0.1) < 0.5
        True
    """
    return mean_field(activation, sigma_w2, sigma_b2, q0=q0).c_star


def _c_star_chaotic(act: Activation, sw: float, sb: float, qs: float) -> float:
    # Normalised by the kernel at c = 1 (= q* up to rounding) so that c = 1 is an exact
    # fixed point and the sign of the gap just below 1 is not lost to rounding.
    norm = sb + sw * float(expect_phi_phi(act, qs, 1.0))

    def gap(c: np.ndarray | float) -> np.ndarray:
        return (sb + sw * np.asarray(expect_phi_phi(act, qs, c))) / norm - np.asarray(c)

    grid = np.concatenate([1.0 - 10.0 ** (-np.arange(24, 0, -1) / 2.0),
                           np.linspace(0.0, -1.0, 11)])  # descending from 1 - 1e-12 to -1
    vals = gap(grid)
    hit = np.flatnonzero(vals >= 0)
    if hit.size == 0:  # |c-map| <= 1 makes gap(-1) >= 0; only rounding gets here
        return -1.0
    i = hit[0]
    if i == 0:  # c* within 1e-12 of 1
        return 1.0
    return float(optimize.brentq(gap, grid[i], grid[i - 1], xtol=1e-15, rtol=4 * _EPS))


def mean_field(
    activation: ActivationLike, sigma_w2: float, sigma_b2: float = 0.0, *, q0: float = 1.0
) -> MeanField:
    """Fixed points, susceptibilities and depth scales (see the module docstring).

    Args:
        activation: registered name, Activation or callable.
        sigma_w2: weight variance times fan-in, > 0.
        sigma_b2: bias variance, >= 0.
        q0: the input's pre-activation variance (selects the fixed point), >= 0.

    Returns:
        A :class:`MeanField`.

    Examples:
        >>> mf = mean_field("relu", 2.0)
        >>> mf.phase, mf.chi_1, mf.xi_c
        ('critical', 1.0, inf)
    """
    sw = _checks.positive("sigma_w2", sigma_w2)
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    act = get_activation(activation)
    qs = q_star(act, sw, sb, q0=q0)
    if math.isinf(qs):
        # NOTE: q grows without bound; susceptibilities are their q -> inf limits
        # (evaluated at q = 1e12) and the normalised c-map tends to a scale-invariant one
        # whose fixed point c = 1 is marginal (power-law approach: xi_c = inf).
        chi_1 = sw * float(expect_dphi2(act, _Q_MAX))
        chi_par = sw * float(expect_phi2_dq(act, _Q_MAX))
        c_s, chi_c = 1.0, 1.0
    else:
        chi_1 = sw * float(expect_dphi2(act, qs))
        chi_par = sw * float(expect_phi2_dq(act, qs))
        if sb == 0 and (qs == 0 or act.closed_form == "homogeneous"):
            # NOTE: without bias, at q* = 0 (or for scale-invariant phi) the normalised
            # c-map has slope 1 at c = 1: correlations approach their limit slower than
            # exponentially (or freeze), so there is no finite xi_c.
            c_s, chi_c = 1.0, 1.0
        elif chi_1 <= 1.0 + _CRIT_TOL:
            c_s, chi_c = 1.0, chi_1
        else:
            c_s = _c_star_chaotic(act, sw, sb, qs)
            chi_c = sw * float(expect_dphi_dphi(act, qs, c_s))
    if abs(chi_1 - 1.0) <= _CRIT_TOL:
        phase = "critical"
    else:
        phase = "ordered" if chi_1 < 1.0 else "chaotic"
    xi_grad = math.inf if chi_1 == 1.0 else -1.0 / math.log(chi_1) if chi_1 > 0 else 0.0
    return MeanField(
        activation=act.name, sigma_w2=sw, sigma_b2=sb, q_star=qs, c_star=c_s, chi_1=chi_1,
        chi_par=chi_par, chi_c=chi_c, xi_q=_depth_scale(chi_par), xi_c=_depth_scale(chi_c),
        xi_grad=xi_grad, phase=phase,
    )
