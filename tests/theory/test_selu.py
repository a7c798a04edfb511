"""Self-normalizing networks: constants, moment map, fixed point, Jacobian, alpha dropout."""

import math

import mpmath as mp
import numpy as np
import pytest

from signalprop.theory import SELU_ALPHA, SELU_LAMBDA, gauss_expect, get_activation
from signalprop.theory.selu import (
    alpha_dropout_constants,
    selu_constants,
    selu_fixed_point,
    selu_jacobian,
    selu_moments,
)


def test_lambda_and_alpha_are_reproduced_by_solving_the_fixed_point_equations():
    lam, alpha = selu_constants()
    assert abs(lam - SELU_LAMBDA) <= 1e-12
    assert abs(alpha - SELU_ALPHA) <= 1e-12
    # and independently at 30 digits: mean 0 gives alpha = phi(0) / (1/2 - sqrt(e) Phi(-1)),
    # variance 1 then gives lambda.
    mp.mp.dps = 30
    a = mp.npdf(0) / (mp.mpf(1) / 2 - mp.sqrt(mp.e) * mp.ncdf(-1))
    second = mp.mpf(1) / 2 + a**2 * (mp.e**2 * mp.ncdf(-2) - 2 * mp.sqrt(mp.e) * mp.ncdf(-1)
                                     + mp.mpf(1) / 2)
    assert abs(float(a) - SELU_ALPHA) < 1e-15
    assert abs(float(1 / mp.sqrt(second)) - SELU_LAMBDA) < 1e-15


def test_other_targets_give_other_constants():
    lam, alpha = selu_constants(mu=0.0, nu=2.0)
    assert selu_moments(0.0, 2.0, 0.0, 1.0, lam=lam, alpha=alpha) == pytest.approx((0.0, 2.0))
    assert alpha > SELU_ALPHA  # E[selu] = 0 at a wider input needs a deeper negative part


@pytest.mark.parametrize("mu,nu,omega,tau", [(0.0, 1.0, 0.0, 1.0), (0.3, 1.4, 0.2, 0.9),
                                             (-0.5, 0.5, 1.0, 2.0), (2.0, 3.0, 1.5, 4.0),
                                             (-3.0, 0.2, 2.0, 0.5)])
def test_moment_map_matches_quadrature(mu, nu, omega, tau):
    act = get_activation("selu")
    m, s2 = mu * omega, nu * tau
    mean = gauss_expect(act.fn, s2, act.kinks, mean=m)
    second = gauss_expect(lambda u: act.fn(u) ** 2, s2, act.kinks, mean=m)
    got = selu_moments(mu, nu, omega, tau)
    assert got[0] == pytest.approx(mean, abs=1e-12)
    assert got[1] == pytest.approx(second - mean**2, abs=1e-12)


def test_zero_one_is_the_fixed_point_and_attracts():
    assert selu_fixed_point() == pytest.approx((0.0, 1.0), abs=1e-14)
    mu, nu = 0.4, 1.6
    for _ in range(60):
        mu, nu = selu_moments(mu, nu)
    assert (mu, nu) == pytest.approx((0.0, 1.0), abs=1e-6)
    mu_s, nu_s = selu_fixed_point(0.1, 1.1)
    assert selu_moments(mu_s, nu_s, 0.1, 1.1) == pytest.approx((mu_s, nu_s), abs=1e-13)


@pytest.mark.parametrize("point", [(0.0, 1.0, 0.0, 1.0), (0.3, 1.4, 0.2, 0.9),
                                   (-0.5, 0.5, 1.0, 2.0)])
def test_jacobian_matches_finite_differences(point):
    mu, nu, omega, tau = point
    h = 1e-6
    fd = np.empty((2, 2))
    for i in range(2):
        fd[i, 0] = (selu_moments(mu + h, nu, omega, tau)[i]
                    - selu_moments(mu - h, nu, omega, tau)[i]) / (2 * h)
        fd[i, 1] = (selu_moments(mu, nu + h, omega, tau)[i]
                    - selu_moments(mu, nu - h, omega, tau)[i]) / (2 * h)
    assert np.allclose(selu_jacobian(*point), fd, atol=1e-8)


def test_jacobian_at_the_fixed_point_is_a_contraction():
    j = selu_jacobian(0.0, 1.0, 0.0, 1.0)
    assert j[0, 0] == 0.0 and j[1, 0] == 0.0  # omega = 0: the mean does not propagate
    assert j[0, 1] == pytest.approx(0.0888, abs=1e-4)
    assert j[1, 1] == pytest.approx(0.7826, abs=1e-4)
    assert np.linalg.norm(j, 2) < 0.79  # spectral norm ~0.788 < 1
    # still a contraction for weights that only roughly satisfy omega = 0, tau = 1
    for omega, tau in [(0.1, 0.95), (-0.1, 1.05)]:
        mu, nu = selu_fixed_point(omega, tau)
        assert np.linalg.norm(selu_jacobian(mu, nu, omega, tau), 2) < 1


def test_alpha_dropout_constants_formula():
    a, b = alpha_dropout_constants(0.1)
    q, ap = 0.9, -SELU_LAMBDA * SELU_ALPHA
    assert a == pytest.approx((q + ap * ap * q * (1 - q)) ** -0.5, rel=1e-15)
    assert b == pytest.approx(-a * (1 - q) * ap, rel=1e-15)
    assert alpha_dropout_constants(0.0) == (1.0, 0.0)


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3])
def test_alpha_dropout_keeps_mean_zero_and_variance_one(rate):
    rng = np.random.default_rng(5)
    n = 2_000_000
    x = get_activation("selu").fn(rng.standard_normal(n))  # mean 0, variance 1
    a, b = alpha_dropout_constants(rate)
    keep = rng.random(n) >= rate
    y = a * np.where(keep, x, -SELU_LAMBDA * SELU_ALPHA) + b
    se_mean = y.std() / math.sqrt(n)
    se_var = math.sqrt(np.mean((y - y.mean()) ** 4) - y.var() ** 2) / math.sqrt(n)
    assert abs(y.mean()) < 4.5 * se_mean
    assert abs(y.var() - 1.0) < 4.5 * se_var


def test_bad_arguments():
    for rate in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="rate must"):
            alpha_dropout_constants(rate)
    with pytest.raises(ValueError, match=r"nu must be > 0, got 0"):
        selu_moments(0.0, 0.0)
    with pytest.raises(ValueError, match=r"tau must be > 0, got -1"):
        selu_jacobian(0.0, 1.0, 0.0, -1)
