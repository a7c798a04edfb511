"""Criticality: the order-to-chaos boundary chi_1 = 1 and universality classes.

Universality classes (Roberts, Yaida & Hanin, ch. 5), from the small-q expansion of the
kernel map. Write phi(u) = s1 u + s2 u^2/2 + s3 u^3/6 + ... near 0; then

    E[phi(sqrt(K) z)^2] = s1^2 (K + a1 K^2 + O(K^3)),   a1 = 3/4 (s2/s1)^2 + s3/s1.

* **scale-invariant** (phi(u) = a+ u, u > 0; a- u, u < 0: ReLU, leaky ReLU, abs, linear):
  critical at C_b = 0, C_W = 2 / (a+^2 + a-^2); every q is a fixed point there.
* **K*=0** (phi(0) = 0, phi'(0) != 0, and the kernel's first correction is negative, e.g.
  a1 < 0: tanh, erf; a one-sided one for ELU/CELU): critical at C_b = 0,
  C_W = 1 / phi'(0)^2 with q* = 0, approached as a power law (tanh: q_l ~ 1 / (2 l)).
* **neither**: everything else. NOTE: PAPERS.md puts every phi with phi(0) = 0 and
  phi'(0) != 0 in the K*=0 class; GELU and SiLU satisfy that but have a1 > 0, so q = 0
  repels at C_W = 1/phi'(0)^2 and the map runs off to another fixed point. We classify
  them as "neither" and find their boundary numerically.

Examples:
    >>> cp = critical_point("tanh")
    >>> cp.sigma_w2, cp.q_star, cp.universality
    (1.0, 0.0, 'K*=0')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize

from signalprop.theory import _checks
from signalprop.theory.activations import Activation, get_activation
from signalprop.theory.expectations import ActivationLike, expect_dphi2, expect_phi2
from signalprop.theory.fixed_points import mean_field, q_star
from signalprop.theory.phase import phase_diagram

UNIVERSALITY_CLASSES = ("scale-invariant", "K*=0", "neither")


@dataclass(frozen=True)
class CriticalPoint:
    """A point on the order-to-chaos boundary (chi_1 = 1).

    Attributes:
        activation: the activation's name.
        sigma_w2, sigma_b2: the critical initialization.
        q_star: the fixed point there (0 for the K*=0 class at sigma_b^2 = 0; q0 for
            scale-invariant phi at sigma_b^2 = 0; inf if q grows without bound).
        chi_1, chi_par: susceptibilities there (chi_1 = 1 up to rounding).
        xi_q: depth scale of the approach to q* (inf: power law).
        universality: one of ``UNIVERSALITY_CLASSES``.

    Examples:
        >>> cp = critical_point("relu")
        >>> cp.sigma_w2, cp.chi_1, cp.universality
        (2.0, 1.0, 'scale-invariant')
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi_1: float
    chi_par: float
    xi_q: float
    universality: str


def _one_sided_slopes(act: Activation) -> tuple[float, float]:
    return (float(act.d1(np.nextafter(0.0, 1.0))), float(act.d1(np.nextafter(0.0, -1.0))))


def universality_class(activation: ActivationLike) -> str:
    """The criticality universality class of ``activation`` (module docstring).

    Returns:
        "scale-invariant", "K*=0" or "neither".

    Examples:
        >>> [universality_class(a) for a in ("relu", "tanh", "gelu")]
        ['scale-invariant', 'K*=0', 'neither']
    """
    act = get_activation(activation)
    if act.slopes is not None:
        return "scale-invariant"
    s_plus, s_minus = _one_sided_slopes(act)
    if abs(float(act.fn(np.asarray(0.0)))) > 1e-15 or s_plus != s_minus or s_plus == 0:
        return "neither"
    k = 1e-3  # sign of the kernel's first correction: E[phi^2] / (s1^2 K) - 1 at small K
    correction = float(expect_phi2(act, k)) / (s_plus * s_plus * k) - 1.0
    return "K*=0" if correction < -1e-9 else "neither"


def critical_point(
    activation: ActivationLike, sigma_b2: float = 0.0, *, q0: float = 1.0
) -> CriticalPoint:
    """The critical sigma_w^2 (chi_1 = 1 at the fixed point reached from q0) for sigma_b^2.

    Closed forms for the scale-invariant class (sigma_w^2 = 2 / (a+^2 + a-^2)) and for the
    K*=0 class at sigma_b^2 = 0 (sigma_w^2 = 1 / phi'(0)^2, q* = 0). Otherwise chi_1 is
    scanned over sigma_w^2 in [1e-3, 1e3] (the vectorised phase-diagram solver), and the
    first crossing of 1 from the ordered side is refined by Brent's method.

    Args:
        activation: registered name, Activation or callable.
        sigma_b2: bias variance, >= 0.
        q0: input pre-activation variance (selects the fixed point), >= 0.

    Returns:
        A :class:`CriticalPoint`.

    Raises:
        ValueError: bad arguments, or no order-to-chaos transition in that range.

    Examples:
        >>> critical_point("relu").sigma_w2
        2.0
        >>> round(critical_point("tanh", sigma_b2=0.05).sigma_w2, 3)
        1.761
    """
    sb = _checks.non_negative("sigma_b2", sigma_b2)
    q0 = _checks.non_negative("q0", q0)
    act = get_activation(activation)
    if act.registered:
        # registry activations are fully described by name and parameters: cache them
        key = (act.name, tuple(sorted(act.params.items())), sb, q0)
        return _critical_cached(*key)
    return _critical(act, sb, q0)


@lru_cache(maxsize=256)
def _critical_cached(name: str, params: tuple[tuple[str, float], ...], sb: float,
                     q0: float) -> CriticalPoint:
    return _critical(get_activation(name, **dict(params)), sb, q0)


def _critical(act: Activation, sb: float, q0: float) -> CriticalPoint:
    cls = universality_class(act)
    if cls == "scale-invariant":
        a_plus, a_minus = act.slopes  # type: ignore[misc]
        sw = 2.0 / (a_plus**2 + a_minus**2)
    elif cls == "K*=0" and sb == 0:
        sw = 1.0 / _one_sided_slopes(act)[0] ** 2
    else:
        sw = _solve_boundary(act, sb, q0)
    mf = mean_field(act, sw, sb, q0=q0)
    return CriticalPoint(act.name, sw, sb, mf.q_star, mf.chi_1, mf.chi_par, mf.xi_q, cls)


def _solve_boundary(act: Activation, sb: float, q0: float) -> float:
    grid = np.logspace(-3.0, 3.0, 241)
    chi = phase_diagram(act, grid, [sb], q0=q0, correlations=False).chi_1[0]
    cross = np.flatnonzero((chi[:-1] < 1.0) & (chi[1:] >= 1.0))
    if cross.size == 0:
        side = "below" if np.all(chi < 1) else "above" if np.all(chi > 1) else "around"
        raise ValueError(
            f"{act.name!r} has no order-to-chaos transition at sigma_b2={sb}: chi_1 stays "
            f"{side} 1 for sigma_w2 in [1e-3, 1e3]"
        )
    i = cross[0]

    def excess(sw: float) -> float:
        qs = q_star(act, sw, sb, q0=q0)
        q = 1e12 if math.isinf(qs) else qs
        return sw * float(expect_dphi2(act, q)) - 1.0

    lo, hi = float(grid[i]), float(grid[i + 1])
    if excess(lo) * excess(hi) > 0:  # the table and the pointwise solver disagree in sign
        sw = lo if abs(excess(lo)) < abs(excess(hi)) else hi
    else:
        sw = float(optimize.brentq(excess, lo, hi, xtol=1e-15, rtol=1e-14))
    if abs(excess(sw)) > 1e-6:
        # chi_1 jumps across 1: the fixed point reached from q0 switches branch there.
        below, above = excess(sw * (1 - 1e-9)) + 1.0, excess(sw * (1 + 1e-9)) + 1.0
        raise ValueError(
            f"{act.name!r} at sigma_b2={sb} (q0={q0}) has no critical point: chi_1 jumps "
            f"from {below:.4g} to {above:.4g} at sigma_w2={sw:.6g}, where the q-map's fixed "
            "point reached from q0 changes branch; try another sigma_b2 or q0"
        )
    return sw
