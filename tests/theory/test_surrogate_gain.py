"""surrogate_gain and the estimator formulas: closed forms vs quadrature vs Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from signalprop.theory import surrogate_gain
from signalprop.theory.quantized import (
    ESTIMATORS,
    estimator_params,
    reste_o,
    surrogate_derivative,
    surrogate_forward,
)

CASES = [("ste", {}), ("clipped", {}), ("clipped", {"limit": 0.5}), ("tanh", {}),
         ("tanh", {"beta": 3.0}), ("reste", {"o": 1.0}), ("reste", {"o": 1.5}),
         ("reste", {"o": 2.0}), ("reste", {"o": 3.0}), ("reste", {"o": 5.0, "t": 2.0, "m": 0.05})]


def _quad_gain(name, q, params):
    """E[g'(X)^2] by adaptive quadrature of the derivative, split at its kinks."""
    p = estimator_params(name, **params)
    kinks = [0.0] + [v for k in ("limit", "t", "m") if k in p for v in (p[k], -p[k])]
    edges = [-np.inf, *sorted(set(kinks)), np.inf]
    sd = math.sqrt(q)
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        total += integrate.quad(
            lambda x: surrogate_derivative(name, x, **params) ** 2 * stats.norm.pdf(x, 0, sd),
            a, b, epsabs=1e-12, epsrel=1e-10, limit=400)[0]
    return total


@pytest.mark.parametrize("q", [0.01, 0.3, 1.0, 4.0])
@pytest.mark.parametrize("name, params", CASES)
def test_closed_form_matches_quadrature(name, params, q):
    assert surrogate_gain(name, q, **params) == pytest.approx(_quad_gain(name, q, params),
                                                              rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("name, params", CASES)
def test_matches_monte_carlo(name, params):
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, math.sqrt(0.5), 400_000)
    v = surrogate_derivative(name, x, **params) ** 2
    se = v.std(ddof=1) / math.sqrt(v.size)
    assert abs(v.mean() - surrogate_gain(name, 0.5, **params)) < 4 * se + 1e-12


def test_derivative_is_the_slope_of_the_forward():
    x = np.linspace(-3, 3, 601)[1:-1]
    x = x[np.abs(np.abs(x) - 1.0) > 1e-3]  # away from the clipped kinks
    h = 1e-6
    for name, params in (("ste", {}), ("clipped", {}), ("tanh", {"beta": 2.0})):
        slope = (surrogate_forward(name, x + h, **params)
                 - surrogate_forward(name, x - h, **params)) / (2 * h)
        np.testing.assert_allclose(surrogate_derivative(name, x, **params), slope, atol=1e-6)
    # ReSTE's derivative is the power function's between m and t
    x = np.linspace(0.11, 1.49, 50)
    slope = (surrogate_forward("reste", x + h, o=3) - surrogate_forward("reste", x - h, o=3)) / (2 * h)
    np.testing.assert_allclose(surrogate_derivative("reste", x, o=3), slope, rtol=1e-6)


def test_reste_limits():
    assert surrogate_gain("reste", 0.7, o=1.0) == pytest.approx(
        surrogate_gain("clipped", 0.7, limit=1.5), rel=1e-12)
    # the inner slope is the secant to (m, m^(1/o)): continuous forward at m
    assert surrogate_derivative("reste", np.array([0.0]), o=3.0)[0] == pytest.approx(
        0.1 ** (1 / 3) / 0.1)
    # raising o raises the gain at small q (steeper near 0): the instability ReSTE trades
    gains = [surrogate_gain("reste", 0.05, o=o) for o in (1.0, 1.5, 2.0, 3.0, 4.0)]
    assert gains == sorted(gains)


def test_array_q_and_schedule_like_params():
    out = surrogate_gain("clipped", np.array([[0.5, 1.0], [2.0, 4.0]]))
    assert out.shape == (2, 2)

    class Half:
        def __float__(self):
            return 2.0

    assert surrogate_gain("reste", 1.0, o=Half()) == surrogate_gain("reste", 1.0, o=2.0)
    assert reste_o(0.0) == 1.0 and reste_o(1.0) == 3.0
    assert reste_o(0.5) == pytest.approx(1 + (1 - math.cos(math.pi / 4)) * 2)


@pytest.mark.parametrize("call, match", [
    (lambda: surrogate_gain("sign", 1.0), "unknown estimator 'sign'; valid: ste, clipped"),
    (lambda: surrogate_gain("ste", 0.0), "q must be > 0"),
    (lambda: surrogate_gain("reste", 1.0, o=0.5), "o must be >= 1"),
    (lambda: surrogate_gain("reste", 1.0, m=2.0), r"m must be in \(0, t\)"),
    (lambda: surrogate_gain("clipped", 1.0, beta=1.0), "takes no parameter"),
    (lambda: surrogate_gain("tanh", 1.0, beta=-1.0), "beta must be > 0"),
    (lambda: estimator_params("clipped", limit="wide"), "limit must be a number"),
    (lambda: reste_o(1.5), "progress must be in"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_registry_lists_every_estimator():
    assert set(ESTIMATORS) == {"ste", "clipped", "tanh", "reste"}
