"""Gaussian expectations of an activation: the ingredients of every mean-field map.

With u ~ N(0, q), and (u1, u2) centred Gaussian with variances q and correlation c:

===================  ==========================  ===========================================
function             quantity                    used for
===================  ==========================  ===========================================
``expect_phi``       E[phi(u)]                   mean shift
``expect_phi2``      E[phi(u)^2]                 q-map
``expect_dphi2``     E[phi'(u)^2]                chi_1
``expect_phi2_dq``   d/dq E[phi(u)^2]            chi_par, xi_q
``expect_phi_phi``   E[phi(u1) phi(u2)]          c-map
``expect_dphi_dphi`` E[phi'(u1) phi'(u2)]        xi_c
===================  ==========================  ===========================================

Closed forms where they exist (checked against quadrature in the tests):

* positively homogeneous phi (ReLU, leaky ReLU, abs, identity), phi(u) = A u + B |u| with
  A = (a+ + a-)/2, B = (a+ - a-)/2 (the arc-cosine kernels of Cho & Saul 2009):
  E[phi] = B sqrt(2q/pi), E[phi^2] = q (A^2 + B^2), E[phi'^2] = A^2 + B^2,
  E[phi(u1)phi(u2)] = q (A^2 c + B^2 (2/pi)(sqrt(1 - c^2) + c arcsin c)),
  E[phi'(u1)phi'(u2)] = A^2 + B^2 (2/pi) arcsin c;
* erf (Williams 1997): E[erf(u1) erf(u2)] = (2/pi) arcsin(2qc / (1 + 2q)),
  E[erf'(u1) erf'(u2)] = (4/pi) / sqrt((1 + 2q)^2 - 4 q^2 c^2).

Everything else is quadrature (:mod:`signalprop.theory.gaussian`). All functions broadcast
over array ``q`` and ``c`` and return a float for scalar input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from signalprop.theory.activations import Activation, get_activation
from signalprop.theory.gaussian import _check_c, _check_q, gauss_expect, gauss_expect2

ActivationLike = str | Activation | Callable[[Any], Any]
_TWO_OVER_PI = 2.0 / math.pi


def _out(x: np.ndarray) -> Any:
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x


def _homogeneous_ab(act: Activation) -> tuple[float, float]:
    assert act.slopes is not None
    a_plus, a_minus = act.slopes
    return 0.5 * (a_plus + a_minus), 0.5 * (a_plus - a_minus)


def expect_phi(activation: ActivationLike, q: Any) -> Any:
    """E[phi(u)], u ~ N(0, q).

    Examples:
        >>> bool(abs(expect_phi("relu", 1.0) - 1 / np.sqrt(2 * np.pi)) < 1e-15)
        True
    """
    act = get_activation(activation)
    q = _check_q(q)
    if act.closed_form == "homogeneous":
        return _out(_homogeneous_ab(act)[1] * np.sqrt(q * _TWO_OVER_PI))
    if act.closed_form == "erf":
        return _out(np.zeros_like(q))
    return gauss_expect(act.fn, q, act.kinks, scale=act.scale, name=act.name)


def expect_phi2(activation: ActivationLike, q: Any) -> Any:
    """E[phi(u)^2], u ~ N(0, q) (the q-map is q -> sigma_b^2 + sigma_w^2 E[phi(u)^2]).

    Examples:
        >>> expect_phi2("relu", 3.0)
        1.5
    """
    act = get_activation(activation)
    q = _check_q(q)
    if act.closed_form == "homogeneous":
        a, b = _homogeneous_ab(act)
        return _out(q * (a * a + b * b))
    if act.closed_form == "erf":
        return _out(_TWO_OVER_PI * np.arcsin(2.0 * q / (1.0 + 2.0 * q)))
    return gauss_expect(lambda u: act.fn(u) ** 2, q, act.kinks, scale=act.scale, name=act.name)


def expect_dphi2(activation: ActivationLike, q: Any) -> Any:
    """E[phi'(u)^2], u ~ N(0, q) (chi_1 = sigma_w^2 E[phi'(u)^2] at q*).

    Examples:
        >>> round(expect_dphi2("tanh", 0.0), 12)
        1.0
    """
    act = get_activation(activation)
    q = _check_q(q)
    if act.closed_form == "homogeneous":
        a, b = _homogeneous_ab(act)
        return _out(np.full_like(q, a * a + b * b))
    if act.closed_form == "erf":
        return _out((2.0 * _TWO_OVER_PI) / np.sqrt(1.0 + 4.0 * q))
    return gauss_expect(lambda u: act.d1(u) ** 2, q, act.kinks, scale=act.scale, name=act.name)


def expect_phi2_dq(activation: ActivationLike, q: Any) -> Any:
    """d/dq E[phi(u)^2], u ~ N(0, q) (chi_par = sigma_w^2 times this at q*).

    d/dq E[F(u)] = E[F''(u)] / 2 (heat equation), so with F = phi^2 this is
    E[phi'^2 + phi phi''] plus, at each kink k where phi' jumps, the Dirac term
    phi(k) (phi'(k+) - phi'(k-)) N(k; 0, q). For user callables (numerical derivatives)
    the equivalent E[phi(u)^2 (u^2 - q)] / (2 q^2) is used instead.

    Examples:
        >>> expect_phi2_dq("relu", 2.0)
        0.5
    """
    act = get_activation(activation)
    q = _check_q(q)
    if act.closed_form == "homogeneous":
        a, b = _homogeneous_ab(act)
        return _out(np.full_like(q, a * a + b * b))
    if act.closed_form == "erf":
        return _out(2.0 * _TWO_OVER_PI / ((1.0 + 2.0 * q) * np.sqrt(1.0 + 4.0 * q)))
    if not act.exact_derivatives:
        qq = np.maximum(q, 1e-300)
        val = gauss_expect(lambda u: act.fn(u) ** 2 * (u * u / qq[..., None] - 1.0), q,
                           act.kinks, scale=act.scale, name=act.name)
        return _out(np.asarray(val) / (2.0 * qq))
    smooth = gauss_expect(lambda u: act.d1(u) ** 2 + act.fn(u) * act.d2(u), q, act.kinks,
                          scale=act.scale, name=act.name)
    total = np.asarray(smooth, dtype=float)
    for k in act.kinks:
        jump = float(act.d1(np.nextafter(k, np.inf)) - act.d1(np.nextafter(k, -np.inf)))
        weight = float(act.fn(np.asarray(k))) * jump
        if weight == 0.0:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = np.exp(-0.5 * k * k / q) / np.sqrt(2.0 * math.pi * q)
        total = total + weight * np.where(q == 0, np.inf if k == 0 else 0.0, dens)
    return _out(total)


def expect_phi_phi(activation: ActivationLike, q: Any, c: Any) -> Any:
    """E[phi(u1) phi(u2)]: Var u1 = Var u2 = q, corr(u1, u2) = c.

    Examples:
        >>> round(expect_phi_phi("relu", 1.0, 0.0) * 2 * np.pi, 12)
        1.0
    """
    act = get_activation(activation)
    q, c = np.broadcast_arrays(_check_q(q), _check_c(c))
    if act.closed_form == "homogeneous":
        a, b = _homogeneous_ab(act)
        arc = np.sqrt(np.maximum(0.0, 1.0 - c * c)) + c * np.arcsin(c)
        return _out(q * (a * a * c + b * b * _TWO_OVER_PI * arc))
    if act.closed_form == "erf":
        return _out(_TWO_OVER_PI * np.arcsin(2.0 * q * c / (1.0 + 2.0 * q)))
    return gauss_expect2(act.fn, act.fn, q, c, act.kinks, act.kinks, scale_f=act.scale,
                         scale_g=act.scale, name=act.name)


def expect_dphi_dphi(activation: ActivationLike, q: Any, c: Any) -> Any:
    """E[phi'(u1) phi'(u2)]: Var u1 = Var u2 = q, corr(u1, u2) = c.

    By Price's theorem this is (1/q) dE[phi(u1)phi(u2)]/dc.

    Examples:
        >>> round(expect_dphi_dphi("relu", 1.0, 0.0), 12)
        0.25
    """
    act = get_activation(activation)
    q, c = np.broadcast_arrays(_check_q(q), _check_c(c))
    if act.closed_form == "homogeneous":
        a, b = _homogeneous_ab(act)
        return _out(a * a + b * b * _TWO_OVER_PI * np.arcsin(c))
    if act.closed_form == "erf":
        return _out(2.0 * _TWO_OVER_PI / np.sqrt((1.0 + 2.0 * q) ** 2 - 4.0 * q * q * c * c))
    return gauss_expect2(act.d1, act.d1, q, c, act.kinks, act.kinks, scale_f=act.scale,
                         scale_g=act.scale, name=act.name)
