"""q-map, c-map and per-layer propagation against simulated random networks.

Monte-Carlo tolerances are 4.5 standard errors of the mean over independent networks
(about 1 false alarm in 150,000 per comparison), plus the O(1/width) finite-width bias
where it is not negligible (stated per test).
"""

import math

import numpy as np
import pytest

from signalprop.theory import cmap, expect_phi2, get_activation, mean_field, propagate, qmap


def _mlp_q(act, sw, sb, width, depth, n_nets, n_inputs, q0, rng):
    """Per-layer mean squared pre-activation of explicit random MLPs (width x width weights).

    Returns (depth + 1, n_nets): one estimate per network, so the spread across networks
    gives the standard error.
    """
    out = np.empty((depth + 1, n_nets))
    for k in range(n_nets):
        # first pre-activations: N(0, q0) exactly (a fixed input through Gaussian weights)
        h = rng.standard_normal((n_inputs, width)) * math.sqrt(q0)
        out[0, k] = np.mean(h * h)
        for layer in range(depth):
            # float32 weights: the sampling error (~1e-2) dwarfs float32 rounding
            w = rng.standard_normal((width, width), dtype=np.float32) * np.float32(
                math.sqrt(sw / width))
            b = rng.standard_normal(width) * math.sqrt(sb)
            h = act.fn(h).astype(np.float32) @ w.T + b
            out[layer + 1, k] = np.mean(np.square(h, dtype=np.float64))
    return out


@pytest.mark.parametrize("name,sw,sb", [("tanh", 1.5, 0.05), ("relu", 2.0, 0.0),
                                        ("selu", 1.0, 0.0), ("gelu", 1.2, 0.1)])
def test_per_layer_q_of_wide_random_mlps_matches_the_q_map(name, sw, sb):
    rng = np.random.default_rng(7)
    act = get_activation(name)
    width, depth, q0 = 1024, 6, 1.7
    sim = _mlp_q(act, sw, sb, width, depth, n_nets=6, n_inputs=8, q0=q0, rng=rng)
    pred = propagate(act, depth, sw, sb, q0=q0).q
    mean = sim.mean(axis=1)
    se = sim.std(axis=1, ddof=1) / math.sqrt(sim.shape[1])
    # finite-width bias of the mean kernel is O(1/width) relative: 4 / 1024 allowed
    assert np.all(np.abs(mean - pred) <= 4.5 * se + 4.0 / width * pred), (mean, pred, se)


def test_relu_at_criticality_preserves_q_exactly():
    p = propagate("relu", 50, sigma_w2=2.0, q0=3.0)
    assert np.all(p.q == 3.0)
    assert np.all(p.grad_scale == 1.0)


def test_tanh_kernel_decays_as_one_over_2l_at_criticality():
    p = propagate("tanh", 1000, sigma_w2=1.0, sigma_b2=0.0, q0=1.0)
    layers = np.array([100, 300, 1000])
    ratio = p.q[layers] * 2 * layers  # -> 1 (with log(l) / l corrections)
    assert np.all(np.abs(ratio - 1) < [0.03, 0.012, 0.005]), ratio
    assert np.all(np.diff(np.abs(ratio - 1)) < 0)  # approaching 1/(2l)


def _two_input_chain(act, sw, sb, q, c0, width, depth, rng):
    """Exact simulation of a random MLP on two inputs.

    For fixed activations a1, a2 of a layer, the next pre-activations (W a1 + b, W a2 + b)
    are, unit by unit, i.i.d. bivariate Gaussian with covariance
    sigma_w^2 / n * Gram(a1, a2) + sigma_b^2: sampling that pair is distributionally
    identical to drawing the n x n weight matrix (each layer's weights are used once).
    """
    z1, z2 = rng.standard_normal((2, width))
    h1 = math.sqrt(q) * z1
    h2 = math.sqrt(q) * (c0 * z1 + math.sqrt(1 - c0 * c0) * z2)
    cs = [float(h1 @ h2 / math.sqrt((h1 @ h1) * (h2 @ h2)))]
    for _ in range(depth):
        a1, a2 = act.fn(h1), act.fn(h2)
        k11 = sb + sw * (a1 @ a1) / width
        k22 = sb + sw * (a2 @ a2) / width
        k12 = sb + sw * (a1 @ a2) / width
        l11 = math.sqrt(k11)
        l21 = k12 / l11
        l22 = math.sqrt(max(k22 - l21 * l21, 0.0))
        e1, e2 = rng.standard_normal((2, width))
        h1, h2 = l11 * e1, l21 * e1 + l22 * e2
        cs.append(float(h1 @ h2 / math.sqrt((h1 @ h1) * (h2 @ h2))))
    return np.array(cs)


def test_chaotic_tanh_decorrelation_matches_the_c_map():
    sw, sb = 2.5, 0.1
    mf = mean_field("tanh", sw, sb)
    act = get_activation("tanh")
    depth, c0 = 30, 0.95
    rng = np.random.default_rng(3)
    runs = np.array([_two_input_chain(act, sw, sb, mf.q_star, c0, 50_000, depth, rng)
                     for _ in range(4)])
    mean = runs.mean(axis=0)
    se = runs.std(axis=0, ddof=1) / 2.0
    pred = propagate("tanh", depth, sw, sb, q0=mf.q_star, c0=c0).c
    assert pred[-1] < c0 - 0.1  # the inputs do decorrelate over these layers
    assert np.all(np.abs(mean - pred) <= 4.5 * se + 1e-4), np.max(np.abs(mean - pred) / se)


def test_chaotic_tanh_decorrelates_at_the_predicted_depth_scale():
    # chi_1 > 1 (chaos) with a finite xi_c: pairs of inputs on either side of c* converge
    # as exp(-l / xi_c). Two chains started at c* +- delta share their random numbers, so
    # finite-width noise cancels in their difference and its log-slope measures xi_c.
    sw, sb, delta, depth = 2.5, 0.1, 0.02, 20
    mf = mean_field("tanh", sw, sb)
    assert mf.phase == "chaotic" and mf.chi_1 > 1 and 5 < mf.xi_c < 50
    act = get_activation("tanh")
    layers = np.arange(depth + 1)
    xi = []
    for seed in range(4):
        up = _two_input_chain(act, sw, sb, mf.q_star, mf.c_star + delta, 50_000, depth,
                              np.random.default_rng(seed))
        down = _two_input_chain(act, sw, sb, mf.q_star, mf.c_star - delta, 50_000, depth,
                                np.random.default_rng(seed))
        slope, _ = np.polyfit(layers, np.log(up - down), 1)
        xi.append(-1.0 / slope)
    xi = np.array(xi)
    se = xi.std(ddof=1) / math.sqrt(xi.size)
    # 4.5 SE across seeds, plus 2% for the O(delta^2) curvature of the c-map
    assert abs(xi.mean() - mf.xi_c) <= 4.5 * se + 0.02 * mf.xi_c, (xi, mf.xi_c)


def test_cmap_and_qmap_basics():
    assert qmap("relu", 3.0, 2.0) == 3.0
    assert qmap("tanh", np.array([0.0, 1.0]), 1.0, 0.1).shape == (2,)
    assert cmap("relu", 1.0, 2.0, 2.0) == pytest.approx(1.0, abs=1e-15)
    assert cmap("relu", 0.0, 1.0, 2.0) == pytest.approx(1 / math.pi, abs=1e-15)
    # no signal at all: the correlation is left as it is, not 0/0
    assert cmap("tanh", 0.3, 0.0, 1.0, 0.0) == 0.3
    q = 0.8
    assert cmap("tanh", 1.0, q, 1.3, 0.2) == pytest.approx(1.0, abs=1e-14)


def test_gradient_scale_is_the_product_of_chi():
    p = propagate("tanh", 5, 1.5, 0.05, q0=1.0)
    assert p.grad_scale[-1] == 1.0
    assert np.allclose(p.grad_scale[:-1], np.cumprod(p.chi[::-1])[::-1])


@pytest.mark.parametrize("kwargs,match", [
    (dict(sigma_w2=0.0), r"sigma_w2 must be > 0, got 0.0 \(valid range \(0, inf\)\)"),
    (dict(sigma_w2=-1.0), r"sigma_w2 must be > 0, got -1.0"),
    (dict(sigma_w2=1.0, sigma_b2=-0.1), r"sigma_b2 must be >= 0, got -0.1"),
    (dict(sigma_w2=float("nan")), r"sigma_w2 must be finite, got nan"),
])
def test_bad_initialisations_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        qmap("tanh", 1.0, **kwargs)
    with pytest.raises(ValueError, match=match):
        propagate("tanh", 3, **kwargs)


def test_bad_depth_and_inputs():
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        propagate("tanh", 0, 1.0)
    with pytest.raises(ValueError, match=r"c0 must be a correlation in \[-1, 1\], got 2"):
        propagate("tanh", 3, 1.0, c0=2)
    with pytest.raises(ValueError, match="q0 must be >= 0, got -1"):
        propagate("tanh", 3, 1.0, q0=-1)
    with pytest.raises(ValueError, match=r"c must be a correlation in \[-1, 1\]"):
        cmap("tanh", -1.2, 1.0, 1.0)


def test_diverging_q_map_raises_instead_of_inf():
    with pytest.raises(ValueError, match="overflowed at layer"):
        propagate("relu", 5000, sigma_w2=10.0)
    assert math.isfinite(expect_phi2("relu", 1e300))
