"""quantized_variance_gain: closed forms against quadrature and Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from signalprop.theory import quantized_variance_gain
from signalprop.theory.quantized import code_moments, max_code, step_factor

LEVELS = ["binary", "ternary", 2, 3, 4, 8]


def _codes(w, levels, m, threshold=0.7):
    """The code rule written out independently (w in units of sigma, m = E|w|)."""
    if levels == "binary":
        return np.where(w >= 0, 1.0, -1.0)
    if levels == "ternary":
        return np.sign(w) * (np.abs(w) > threshold * m)
    top = 2 ** (levels - 1) - 1
    s = 2 * m / math.sqrt(top)
    return np.clip(np.round(w / s), -top, top)


def _density(weights):
    if weights == "gaussian":
        return stats.norm.pdf, math.sqrt(2 / math.pi), (-np.inf, np.inf)
    a = math.sqrt(3)
    return (lambda w: np.where(np.abs(w) <= a, 1 / (2 * a), 0.0)), a / 2, (-a, a)


def _quad(f, weights, levels):
    pdf, m, (lo, hi) = _density(weights)
    # integrate piecewise between the code's jump points so quad sees smooth pieces
    top = max_code(levels)
    s = step_factor(levels) * m if not isinstance(levels, str) else 0.0
    cuts = {0.0}
    if levels == "ternary":
        cuts |= {0.7 * m, -0.7 * m}
    elif s:
        cuts |= {(k - 0.5) * s * sign for k in range(1, top + 1) for sign in (1, -1)}
    bounds = sorted(c for c in cuts if lo < c < hi)
    edges = [lo, *bounds, hi]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        total += integrate.quad(lambda w: f(w, m) * pdf(w), a, b, epsabs=1e-13, epsrel=1e-12,
                                limit=200)[0]
    return total


@pytest.mark.parametrize("weights", ["gaussian", "uniform"])
@pytest.mark.parametrize("levels", LEVELS)
def test_code_moments_match_quadrature(levels, weights):
    ec2, ewc, _ = code_moments(levels, weights=weights)
    q_ec2 = _quad(lambda w, m: _codes(np.array(w), levels, m) ** 2, weights, levels)
    q_ewc = _quad(lambda w, m: w * _codes(np.array(w), levels, m), weights, levels)
    assert ec2 == pytest.approx(q_ec2, abs=1e-9)
    assert ewc == pytest.approx(q_ewc, abs=1e-9)


@pytest.mark.parametrize("weights", ["gaussian", "uniform"])
@pytest.mark.parametrize("levels", LEVELS)
def test_gain_matches_monte_carlo(levels, weights):
    """Sample weights, quantize with sample statistics (as a layer does), measure
    E[Q^2] / E[w^2]; tolerance 4 standard errors from 20 independent batches."""
    rng = np.random.default_rng(0)
    gains = {"mean_abs": [], None: []}
    for _ in range(20):
        w = rng.standard_normal(100_000) if weights == "gaussian" else rng.uniform(
            -math.sqrt(3), math.sqrt(3), 100_000)
        m = np.abs(w).mean()
        c = _codes(w, levels, m)
        alpha = (w * c).sum() / (c * c).sum()
        gains["mean_abs"].append((alpha * c).var() / w.var())
        step = 2 * m / math.sqrt(max_code(levels)) if not isinstance(levels, str) else 1.0
        gains[None].append(np.mean((step * c) ** 2) / np.mean(w ** 2))
    for scale, values in gains.items():
        est, se = np.mean(values), np.std(values, ddof=1) / math.sqrt(len(values))
        predicted = quantized_variance_gain(levels, scale, weights=weights)
        assert abs(est - predicted) < 4 * se + 1e-12, (scale, est, predicted, se)


def test_known_values():
    assert quantized_variance_gain("binary") == pytest.approx(2 / math.pi, abs=1e-15)
    assert quantized_variance_gain("binary", weights="uniform") == pytest.approx(0.75, abs=1e-15)
    for levels in LEVELS:
        assert quantized_variance_gain(levels, "rms") == 1.0
        assert quantized_variance_gain(levels, "mean_abs") <= 1.0  # Cauchy-Schwarz
    assert quantized_variance_gain("binary", None, sigma=0.25) == pytest.approx(16.0)
    # more bits: the grid approaches the identity, G -> 1
    gains = [quantized_variance_gain(k) for k in (2, 3, 4, 6, 8)]
    assert gains == sorted(gains) and gains[-1] > 0.995


def test_ternary_matches_twn_closed_form():
    # TWN: alpha = E[|w| ; |w| > D] / P(|w| > D), G = alpha^2 P = 4 phi(D)^2 / P (sigma = 1)
    d = 0.7 * math.sqrt(2 / math.pi)
    p = 2 * stats.norm.sf(d)
    assert quantized_variance_gain("ternary") == pytest.approx(4 * stats.norm.pdf(d) ** 2 / p)


@pytest.mark.parametrize("kwargs, match", [
    ({"levels": "quaternary"}, "weight_levels must be 'binary', 'ternary' or an integer"),
    ({"levels": 1}, "bit width 2..16"),
    ({"levels": True}, "bit width"),
    ({"levels": "binary", "scale": "max"}, "scale must be one of 'mean_abs', 'rms' or None"),
    ({"levels": "binary", "weights": "laplace"}, "weights must be one of"),
    ({"levels": "binary", "scale": None, "sigma": 0.0}, "sigma must be > 0"),
])
def test_bad_input(kwargs, match):
    levels = kwargs.pop("levels")
    with pytest.raises(ValueError, match=match):
        quantized_variance_gain(levels, **kwargs)
