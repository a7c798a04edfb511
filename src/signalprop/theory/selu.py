"""Self-normalizing networks (Klambauer et al. 2017): the SELU moment map and its constants.

A unit z = sum_i w_i x_i with inputs of mean mu and variance nu and weights with
omega = sum w_i and tau = sum w_i^2 is (CLT) z ~ N(m, S), m = mu omega, S = nu tau. SELU,
selu(z) = lambda z (z > 0), lambda alpha (e^z - 1) (z <= 0), maps (mu, nu) to

    mu~ = E[selu(z)],  nu~ = E[selu(z)^2] - mu~^2,

in closed form with Phi (the normal CDF, via erfc) and E[e^{kz}; z <= 0] =
exp(k m + k^2 S / 2) Phi(-(m + k S) / sqrt(S)), evaluated with erfcx so that nothing
overflows. (lambda, alpha) are the unique pair making (0, 1) a fixed point for
(omega, tau) = (0, 1); the map's Jacobian there is a contraction.

Examples:
    >>> lam, alpha = selu_constants()
    >>> abs(lam - SELU_LAMBDA) < 1e-12 and abs(alpha - SELU_ALPHA) < 1e-12
    True
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from signalprop.theory import _checks
from signalprop.theory.activations import SELU_ALPHA, SELU_LAMBDA

_SQRT2 = math.sqrt(2.0)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _exp_below_zero(k: float, m: float, s: float) -> float:
    """E[e^{k z}; z <= 0] for z ~ N(m, s^2), without overflow."""
    a = (m + k * s * s) / s
    if a >= 0:  # exp(k m + k^2 s^2/2) Phi(-a) = erfcx(a/sqrt2)/2 * exp(-m^2 / (2 s^2))
        return 0.5 * float(special.erfcx(a / _SQRT2)) * math.exp(-0.5 * (m / s) ** 2)
    return math.exp(k * m + 0.5 * k * k * s * s) * _cdf(-a)


def _parts(m: float, s: float) -> tuple[float, float, float, float, float]:
    t = m / s
    return _cdf(t), _pdf(t), _exp_below_zero(1.0, m, s), _exp_below_zero(2.0, m, s), t


def _check(mu: float, nu: float, omega: float, tau: float) -> tuple[float, float]:
    mu = float(mu)
    if not math.isfinite(mu):
        raise ValueError(f"mu must be finite, got {mu!r}")
    _checks.positive("nu", nu)
    if not math.isfinite(float(omega)):
        raise ValueError(f"omega must be finite, got {omega!r}")
    _checks.positive("tau", tau)
    m, s2 = mu * float(omega), float(nu) * float(tau)
    return m, math.sqrt(s2)


def selu_moments(
    mu: float, nu: float, omega: float = 0.0, tau: float = 1.0, *,
    lam: float = SELU_LAMBDA, alpha: float = SELU_ALPHA,
) -> tuple[float, float]:
    """The moment map (mu, nu) -> (mu~, nu~) of a SELU layer (module docstring).

    mu~ = lam [m Phi(m/s) + s phi(m/s) + alpha (E[e^z; z<=0] - Phi(-m/s))],
    E[selu^2] = lam^2 [(m^2 + S) Phi(m/s) + m s phi(m/s)
                       + alpha^2 (E[e^2z; z<=0] - 2 E[e^z; z<=0] + Phi(-m/s))],
    nu~ = E[selu^2] - mu~^2, with m = mu omega, S = s^2 = nu tau.

    Args:
        mu: mean of the layer's inputs.
        nu: variance of the layer's inputs (> 0).
        omega: sum of the unit's weights.
        tau: sum of the squares of the unit's weights (> 0).
        lam: SELU's scale lambda.
        alpha: SELU's negative-side alpha.

    Returns:
        (mu~, nu~).

    Examples:
        >>> [round(x, 12) for x in selu_moments(0.0, 1.0)]
        [0.0, 1.0]
    """
    m, s = _check(mu, nu, omega, tau)
    cdf, pdf, e1, e2, _ = _parts(m, s)
    p0 = 1.0 - cdf
    mean = lam * (m * cdf + s * pdf + alpha * (e1 - p0))
    second = lam**2 * ((m * m + s * s) * cdf + m * s * pdf + alpha**2 * (e2 - 2 * e1 + p0))
    return mean, second - mean * mean


def selu_jacobian(
    mu: float, nu: float, omega: float = 0.0, tau: float = 1.0, *,
    lam: float = SELU_LAMBDA, alpha: float = SELU_ALPHA,
) -> np.ndarray:
    """d(mu~, nu~) / d(mu, nu), a 2x2 array, from Gaussian derivative identities.

    d/dm E[f(z)] = E[f'(z)] and d/dS E[f(z)] = E[f''(z)] / 2, with selu'' carrying the
    Dirac term lam (1 - alpha) delta(z) of its slope jump at 0; then d/dmu = omega d/dm,
    d/dnu = tau d/dS, and d nu~ = d E[selu^2] - 2 mu~ d mu~.

    Examples:
        >>> j = selu_jacobian(0.0, 1.0)
        >>> bool(np.linalg.norm(j, 2) < 1)
        True
    """
    m, s = _check(mu, nu, omega, tau)
    cdf, pdf, e1, e2, _ = _parts(m, s)
    mean, _ = selu_moments(mu, nu, omega, tau, lam=lam, alpha=alpha)
    dmean_dm = lam * (cdf + alpha * e1)
    dmean_ds2 = 0.5 * lam * (alpha * e1 + (1.0 - alpha) * pdf / s)
    dsec_dm = 2 * lam**2 * (m * cdf + s * pdf + alpha**2 * (e2 - e1))
    dsec_ds2 = lam**2 * (cdf + alpha**2 * (2 * e2 - e1))
    omega, tau = float(omega), float(tau)
    return np.array([
        [omega * dmean_dm, tau * dmean_ds2],
        [omega * (dsec_dm - 2 * mean * dmean_dm), tau * (dsec_ds2 - 2 * mean * dmean_ds2)],
    ])


def selu_fixed_point(
    omega: float = 0.0, tau: float = 1.0, *, lam: float = SELU_LAMBDA,
    alpha: float = SELU_ALPHA, start: tuple[float, float] = (0.0, 1.0),
) -> tuple[float, float]:
    """The fixed point (mu*, nu*) of the moment map for given (omega, tau).

    Solved with a Newton-type method (scipy ``hybr``) on the closed-form map and Jacobian.

    Examples:
        >>> [round(x, 12) + 0.0 for x in selu_fixed_point()]
        [0.0, 1.0]
    """
    def resid(x: np.ndarray) -> np.ndarray:
        mu_t, nu_t = selu_moments(x[0], max(x[1], 1e-300), omega, tau, lam=lam, alpha=alpha)
        return np.array([mu_t - x[0], nu_t - x[1]])

    def jac(x: np.ndarray) -> np.ndarray:
        return selu_jacobian(x[0], max(x[1], 1e-300), omega, tau, lam=lam,
                             alpha=alpha) - np.eye(2)

    sol = optimize.root(resid, np.asarray(start, dtype=float), jac=jac, method="hybr",
                        options={"xtol": 1e-15})
    # "no further improvement" at xtol 1e-15 is convergence to rounding: judge the residual
    if np.max(np.abs(resid(sol.x))) > 1e-12 or sol.x[1] <= 0:
        raise ValueError(
            f"no SELU fixed point found for omega={omega}, tau={tau} from {start}: "
            f"{sol.message}"
        )
    return float(sol.x[0]), float(sol.x[1])


def selu_constants(
    mu: float = 0.0, nu: float = 1.0, omega: float = 0.0, tau: float = 1.0
) -> tuple[float, float]:
    """(lambda, alpha) that make (mu, nu) a fixed point of the moment map.

    Solves selu_moments(mu, nu, omega, tau; lambda, alpha) = (mu, nu) for the two constants
    (Newton-type root finding from the published values); the defaults give Klambauer et
    al.'s lambda = 1.0507009873554804934..., alpha = 1.6732632423543772848...

    Examples:
        >>> [round(x, 10) for x in selu_constants()]
        [1.0507009874, 1.6732632424]
    """
    _check(mu, nu, omega, tau)

    def resid(x: np.ndarray) -> np.ndarray:
        mu_t, nu_t = selu_moments(mu, nu, omega, tau, lam=x[0], alpha=x[1])
        return np.array([mu_t - mu, nu_t - nu])

    sol = optimize.root(resid, np.array([SELU_LAMBDA, SELU_ALPHA]), method="hybr",
                        options={"xtol": 1e-15})
    if np.max(np.abs(resid(sol.x))) > 1e-12:
        raise ValueError(f"no SELU constants for (mu, nu, omega, tau) = "
                         f"{(mu, nu, omega, tau)}: {sol.message}")
    return float(sol.x[0]), float(sol.x[1])


def alpha_dropout_constants(
    rate: float, *, lam: float = SELU_LAMBDA, alpha: float = SELU_ALPHA
) -> tuple[float, float]:
    """Affine constants (a, b) of alpha dropout: y = a (d x + (1 - d) alpha') + b.

    Dropped units (d = 0, probability ``rate``) are set to alpha' = -lam alpha (SELU's
    negative saturation); with keep probability q = 1 - rate,
    a = (q + alpha'^2 q (1 - q))^(-1/2) and b = -a (1 - q) alpha' restore mean 0 and
    variance 1 for inputs of mean 0 and variance 1.

    Args:
        rate: drop probability in [0, 1).

    Returns:
        (a, b); (1, 0) at rate 0.

    Examples:
        >>> [round(x, 6) for x in alpha_dropout_constants(0.1)]
        [0.921285, 0.161971]
    """
    rate = _checks.probability("rate", rate)
    q = 1.0 - rate
    a_prime = -lam * alpha
    a = (q + a_prime * a_prime * q * (1.0 - q)) ** -0.5
    return a, -a * (1.0 - q) * a_prime
