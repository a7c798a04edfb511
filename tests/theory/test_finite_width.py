"""Finite-width corrections: preactivation kurtosis grows like depth / width at criticality.

Monte Carlo: a random MLP on one input is simulated exactly without weight matrices. For a
fixed activation vector a, W a + b with W_ij ~ N(0, C_W / n), b_i ~ N(0, C_b) is
N(0, (C_b + C_W |a|^2 / n) I), and each layer's weights act on one vector only, so
z_{l+1} = sqrt(C_b + C_W |phi(z_l)|^2 / n) * xi with fresh xi ~ N(0, I_n) has exactly the
distribution of the network's pre-activations. (tests/models/test_mlp.py checks the same
prediction on explicit torch MLPs.)
"""

import math

import numpy as np
import pytest

from signalprop.theory import get_activation
from signalprop.theory.finite_width import four_point_vertex, relu_kurtosis_exact


def _kurtosis_mc(name, sw, sb, width, depth, n_nets, q0, rng, groups=25):
    """Excess kurtosis per layer (pooled over units and networks) and its standard error
    (spread of the estimate over ``groups`` independent groups of networks)."""
    act = get_activation(name)
    z = rng.standard_normal((n_nets, width)) * math.sqrt(q0)
    m2 = np.empty((depth, groups))
    m4 = np.empty((depth, groups))
    for layer in range(depth):
        zg = (z * z).reshape(groups, -1)
        m2[layer] = zg.mean(axis=1)
        m4[layer] = (zg * zg).mean(axis=1)
        g = sb + sw * np.mean(act.fn(z) ** 2, axis=1, keepdims=True)
        z = np.sqrt(g) * rng.standard_normal((n_nets, width))
    per_group = m4 / m2**2 - 3.0
    pooled = m4.mean(axis=1) / m2.mean(axis=1) ** 2 - 3.0
    return pooled, per_group.std(axis=1, ddof=1) / math.sqrt(groups)


def test_relu_vertex_recursion_is_five_l_minus_one():
    fw = four_point_vertex("relu", 6, sigma_w2=2.0, q0=2.5)
    assert np.allclose(fw.normalized, 5.0 * np.arange(6))
    assert np.allclose(fw.q, 2.5)
    assert np.allclose(fw.excess_kurtosis(100), 15.0 * np.arange(6) / 100)


def test_tanh_normalized_vertex_approaches_two_thirds_l():
    fw = four_point_vertex("tanh", 1000)  # sigma_w^2 defaults to the critical 1
    slope = fw.normalized[[99, 999]] / np.array([100, 1000])
    assert abs(slope[1] - 2 / 3) < 0.005 and abs(slope[1] - 2 / 3) < abs(slope[0] - 2 / 3)
    assert fw.q[-1] * 2 * 1000 == pytest.approx(1.0, abs=0.01)  # K ~ 1/(2l)


@pytest.mark.parametrize("width", [64, 128, 256])
def test_relu_kurtosis_matches_the_exact_finite_width_formula(width):
    rng = np.random.default_rng(width)
    depth = 8
    kurt, se = _kurtosis_mc("relu", 2.0, 0.0, width, depth, 10_000, 1.0, rng)
    exact = relu_kurtosis_exact(depth, width)
    assert np.all(np.abs(kurt - exact) <= 4.5 * se + 1e-3), (kurt, exact, se)


@pytest.mark.parametrize("name,width", [("relu", 256), ("relu", 512), ("tanh", 128),
                                        ("tanh", 256)])
def test_kurtosis_grows_like_depth_over_width_as_predicted(name, width):
    rng = np.random.default_rng(1 + width)
    depth = 8
    fw = four_point_vertex(name, depth)  # at the critical point, q0 = 1
    sw = 2.0 if name == "relu" else 1.0
    kurt, se = _kurtosis_mc(name, sw, 0.0, width, depth, 8_000, 1.0, rng)
    pred = fw.excess_kurtosis(width)
    # Leading order in 1/width: the next order is ~ 5(l-1)/(2 width) relative for ReLU
    # (from the exact formula), i.e. < 7% here; 10% is allowed for both activations.
    assert np.all(np.abs(kurt - pred) <= 4.5 * se + 0.10 * pred), (kurt, pred, se)
    assert kurt[-1] > 5 * se[-1]  # the growth is resolved, not noise


def test_kurtosis_times_width_collapses():
    # excess kurtosis * width depends on depth only (to leading order)
    k = [four_point_vertex("tanh", 10).excess_kurtosis(n) * n for n in (64, 1024)]
    assert np.allclose(k[0], k[1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        four_point_vertex("relu", 0)
    with pytest.raises(ValueError, match=r"width must be > 0, got 0"):
        four_point_vertex("relu", 3, 2.0).excess_kurtosis(0)
    with pytest.raises(ValueError, match=r"q0 must be > 0, got 0"):
        four_point_vertex("relu", 3, 2.0, q0=0)
    with pytest.raises(ValueError, match="width must be an integer"):
        relu_kurtosis_exact(3, 0)
