"""Fixed points, susceptibilities and depth scales, in every regime of the q-map."""

import math

import pytest

from signalprop.theory import (
    c_star,
    cmap,
    expect_dphi2,
    expect_dphi_dphi,
    expect_phi2,
    mean_field,
    propagate,
    q_star,
    qmap,
)


@pytest.mark.parametrize("name,sw,sb", [("tanh", 1.5, 0.05), ("tanh", 3.0, 0.3),
                                        ("selu", 1.0, 0.0), ("sigmoid", 4.0, 0.1),
                                        ("gelu", 1.5, 0.2), ("relu6", 1.7, 0.3),
                                        ("erf", 2.0, 0.1)])
def test_q_star_is_a_fixed_point_and_the_limit_of_the_iteration(name, sw, sb):
    qs = q_star(name, sw, sb)
    assert qs > 0
    assert abs(qmap(name, qs, sw, sb) - qs) <= 1e-13 * qs
    # and it is where iterating from q0 = 1 goes
    assert abs(propagate(name, 400, sw, sb, q0=1.0).q[-1] - qs) <= 1e-9 * qs


def test_closed_form_fixed_points():
    assert q_star("relu", 1.0, 0.5) == pytest.approx(1.0, abs=1e-15)  # sb / (1 - sw/2)
    assert q_star("leaky_relu", 1.0, 0.3) == pytest.approx(0.3 / (1 - 0.5 * (1 + 1e-4)), 1e-15)
    assert q_star("relu", 2.0, 0.0, q0=3.7) == 3.7  # critical: every q is preserved
    assert q_star("relu", 2.5, 0.1) == math.inf  # chaotic scale-invariant: q diverges
    assert q_star("relu", 2.0, 0.1) == math.inf  # critical with bias: q grows linearly
    assert q_star("identity", 0.5, 0.0) == 0.0


def test_signal_dies_out_in_the_ordered_phase_without_bias():
    assert q_star("tanh", 0.7, 0.0) == 0.0
    assert q_star("tanh", 1.0, 0.0) == 0.0  # critical: q ~ 1/(2l) -> 0
    assert q_star("tanh", 1.0 + 1e-6, 0.0) == pytest.approx(1e-6 / 2, rel=1e-3)
    mf = mean_field("tanh", 0.7)
    assert mf.q_star == 0 and mf.chi_1 == pytest.approx(0.7, abs=1e-15)


def test_fixed_point_depends_on_where_the_iteration_starts():
    # q0 = 0 with phi(0) = 0 and no bias stays at 0 even in the chaotic phase
    assert q_star("tanh", 2.0, 0.0, q0=0.0) == 0.0
    assert q_star("tanh", 2.0, 0.0, q0=1.0) > 0


def test_susceptibilities_and_depth_scales_follow_their_definitions():
    sw, sb = 1.5, 0.05
    mf = mean_field("tanh", sw, sb)
    h = 1e-6
    slope = (qmap("tanh", mf.q_star + h, sw, sb) - qmap("tanh", mf.q_star - h, sw, sb)) / (2 * h)
    assert mf.chi_par == pytest.approx(slope, rel=1e-8)
    assert mf.chi_1 == pytest.approx(sw * expect_dphi2("tanh", mf.q_star), rel=1e-14)
    assert mf.phase == "ordered" and mf.c_star == 1.0
    assert mf.xi_c == pytest.approx(-1 / math.log(mf.chi_1), rel=1e-14)
    assert mf.xi_q == pytest.approx(-1 / math.log(mf.chi_par), rel=1e-14)
    assert mf.xi_grad == pytest.approx(mf.xi_c, rel=1e-14)


def test_chaotic_phase_has_a_stable_c_star_below_one():
    sw, sb = 3.0, 0.2
    mf = mean_field("tanh", sw, sb)
    assert mf.phase == "chaotic" and mf.chi_1 > 1
    assert 0 < mf.c_star < 1
    assert cmap("tanh", mf.c_star, mf.q_star, sw, sb) == pytest.approx(mf.c_star, abs=1e-12)
    h = 1e-5
    slope = (cmap("tanh", mf.c_star + h, mf.q_star, sw, sb)
             - cmap("tanh", mf.c_star - h, mf.q_star, sw, sb)) / (2 * h)
    assert slope == pytest.approx(mf.chi_c, rel=1e-6)  # chi_c is the c-map's slope at c*
    assert mf.chi_c == pytest.approx(sw * expect_dphi_dphi("tanh", mf.q_star, mf.c_star))
    assert mf.xi_c == pytest.approx(-1 / math.log(mf.chi_c))
    assert mf.xi_grad < 0  # exploding gradients
    assert c_star("tanh", sw, sb) == mf.c_star


def test_odd_activation_without_bias_decorrelates_fully_in_chaos():
    # tanh and SELU at sigma_b^2 = 0: E[phi(u1) phi(u2)] vanishes at c = 0 (odd phi, or
    # SELU's zero mean at its fixed point), so c* = 0.
    assert mean_field("tanh", 1.3).c_star == pytest.approx(0.0, abs=1e-12)
    assert expect_phi2("selu", 1.0) == pytest.approx(1.0, abs=1e-12)
    assert mean_field("selu", 1.0).c_star == pytest.approx(0.0, abs=1e-12)


def test_criticality_labels():
    assert mean_field("relu", 2.0).phase == "critical"
    assert mean_field("tanh", 1.0).phase == "critical"
    assert mean_field("relu", 2.0).xi_c == math.inf
    assert mean_field("relu", 1.0, 0.5).xi_c == pytest.approx(1 / math.log(2))


def test_divergent_q_reports_limits_not_nan():
    mf = mean_field("gelu", 3.0, 0.1)
    assert mf.q_star == math.inf
    assert mf.chi_1 == pytest.approx(1.5, rel=1e-5)  # sigma_w^2 * E[gelu'^2] -> 3 * 1/2
    assert all(not math.isnan(v) for v in (mf.c_star, mf.chi_c, mf.xi_c, mf.xi_q))


@pytest.mark.parametrize("fn", [q_star, c_star, mean_field])
def test_bad_arguments(fn):
    with pytest.raises(ValueError, match=r"sigma_w2 must be > 0, got 0"):
        fn("tanh", 0)
    with pytest.raises(ValueError, match=r"sigma_b2 must be >= 0"):
        fn("tanh", 1.0, -1.0)
    with pytest.raises(ValueError, match="unknown activation 'tahn'"):
        fn("tahn", 1.0)
    with pytest.raises(ValueError, match="q0 must be >= 0, got -2"):
        fn("tanh", 1.0, q0=-2)
