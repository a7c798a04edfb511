"""Critical points (chi_1 = 1) and universality classes."""

import math

import pytest

from signalprop.theory import (
    SELU_ALPHA,
    SELU_LAMBDA,
    critical_point,
    mean_field,
    propagate,
    universality_class,
)


def test_relu_is_critical_at_c_w_2_and_preserves_q():
    cp = critical_point("relu")
    assert cp.sigma_w2 == 2.0 and cp.universality == "scale-invariant"
    assert cp.q_star == 1.0 and cp.chi_1 == 1.0
    assert set(propagate("relu", 30, cp.sigma_w2, q0=5.0).q) == {5.0}


@pytest.mark.parametrize("name,params,expected", [
    ("leaky_relu", {"negative_slope": 0.2}, 2 / 1.04),
    ("abs", {}, 1.0),
    ("identity", {}, 1.0),
])
def test_scale_invariant_class_c_w(name, params, expected):
    from signalprop.theory import get_activation

    cp = critical_point(get_activation(name, **params))
    assert cp.sigma_w2 == pytest.approx(expected, rel=1e-15)
    assert cp.universality == "scale-invariant"


@pytest.mark.parametrize("name,expected", [("tanh", 1.0), ("erf", math.pi / 4),
                                           ("elu", 1.0), ("celu", 1.0)])
def test_k_star_zero_class_at_zero_bias(name, expected):
    cp = critical_point(name)
    assert cp.universality == "K*=0"
    assert cp.sigma_w2 == pytest.approx(expected, rel=1e-14)  # 1 / phi'(0)^2
    assert cp.q_star == 0.0 and cp.chi_1 == pytest.approx(1.0, abs=1e-14)


def test_tanh_critical_line_with_bias():
    cp = critical_point("tanh", sigma_b2=0.05)
    assert cp.sigma_w2 == pytest.approx(1.7609546, rel=1e-6)
    mf = mean_field("tanh", cp.sigma_w2, 0.05)
    assert abs(mf.chi_1 - 1) < 1e-9 and mf.q_star == pytest.approx(cp.q_star)
    # ordered just below, chaotic just above
    assert mean_field("tanh", cp.sigma_w2 * 0.99, 0.05).phase == "ordered"
    assert mean_field("tanh", cp.sigma_w2 * 1.01, 0.05).phase == "chaotic"


def test_selu_critical_point_is_that_of_its_slopes_at_zero():
    # q* = 0 at sigma_b^2 = 0: SELU is then leaky-ReLU-like with slopes lam, lam*alpha
    cp = critical_point("selu")
    assert cp.sigma_w2 == pytest.approx(2 / (SELU_LAMBDA**2 * (1 + SELU_ALPHA**2)), 1e-12)
    assert cp.universality == "neither"


def test_universality_classes():
    assert [universality_class(n) for n in ("relu", "leaky_relu", "abs", "identity")] == [
        "scale-invariant"] * 4
    assert [universality_class(n) for n in ("tanh", "erf", "elu")] == ["K*=0"] * 3
    # phi(0) = 0 and phi'(0) != 0, but a positive first kernel correction: not K*=0
    assert [universality_class(n) for n in ("gelu", "silu", "mish")] == ["neither"] * 3
    assert [universality_class(n) for n in ("sigmoid", "softplus", "selu", "relu6")] == [
        "neither"] * 4


def test_no_critical_point_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="gelu.*no critical point: chi_1 jumps"):
        critical_point("gelu")


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"sigma_b2 must be >= 0, got -0.1 \(valid range"):
        critical_point("tanh", -0.1)
    with pytest.raises(ValueError, match="unknown activation"):
        critical_point("nope")
