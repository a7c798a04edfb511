"""Every registered activation's phi, phi' and phi'' against mpmath (written independently)."""

import math

import mpmath as mp
import numpy as np
import pytest

from signalprop.theory import SELU_ALPHA, SELU_LAMBDA, activation_names, get_activation

mp.mp.dps = 30
LAM, ALP = mp.mpf(SELU_LAMBDA), mp.mpf(SELU_ALPHA)


def _sig(x):
    return 1 / (1 + mp.exp(-x))


# (registry name, params, mpmath function); derivatives come from mpmath.diff.
CASES = [
    ("relu", {}, lambda x: x if x > 0 else mp.mpf(0)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: x if x > 0 else mp.mpf("0.2") * x),
    ("abs", {}, abs),
    ("identity", {}, lambda x: x),
    ("gelu", {}, lambda x: x * mp.ncdf(x)),
    ("silu", {}, lambda x: x * _sig(x)),
    ("tanh", {}, mp.tanh),
    ("erf", {}, mp.erf),
    ("sigmoid", {}, _sig),
    ("elu", {}, lambda x: x if x > 0 else mp.expm1(x)),
    ("elu", {"alpha": 0.5}, lambda x: x if x > 0 else mp.mpf("0.5") * mp.expm1(x)),
    ("selu", {}, lambda x: LAM * (x if x > 0 else ALP * mp.expm1(x))),
    ("celu", {"alpha": 2.0}, lambda x: x if x > 0 else 2 * mp.expm1(x / 2)),
    ("softplus", {}, lambda x: mp.log1p(mp.exp(x))),
    ("softplus", {"beta": 3.0}, lambda x: mp.log1p(mp.exp(3 * x)) / 3),
    ("mish", {}, lambda x: x * mp.tanh(mp.log1p(mp.exp(x)))),
    ("relu6", {}, lambda x: min(max(x, mp.mpf(0)), mp.mpf(6))),
]
# Points avoid every kink (0 and 6) by at least 0.01.
POINTS = [-7.3, -3.1, -1.0, -0.37, -0.01, 0.01, 0.25, 0.9, 2.2, 5.5, 6.4, 11.0]


def test_every_registered_name_is_covered():
    covered = {name for name, _, _ in CASES} | {"swish", "linear"}
    assert covered == set(activation_names())


@pytest.mark.parametrize("name,params,ref", CASES, ids=[f"{c[0]}{c[1] or ''}" for c in CASES])
def test_function_and_derivatives_match_mpmath(name, params, ref):
    act = get_activation(name, **params)
    x = np.array(POINTS)
    f, d1, d2 = act.fn(x), act.d1(x), act.d2(x)
    for i, p in enumerate(POINTS):
        r0 = float(ref(mp.mpf(p)))
        r1 = float(mp.diff(ref, mp.mpf(p), 1))
        r2 = float(mp.diff(ref, mp.mpf(p), 2))
        assert abs(f[i] - r0) <= 1e-14 * max(1.0, abs(r0)), (p, f[i], r0)
        assert abs(d1[i] - r1) <= 1e-13 * max(1.0, abs(r1)), (p, d1[i], r1)
        assert abs(d2[i] - r2) <= 1e-12 * max(1.0, abs(r2)), (p, d2[i], r2)


def test_aliases_and_case():
    assert get_activation("Swish").name == "silu"
    assert get_activation("linear").name == "identity"
    assert get_activation("leaky-relu").name == "leaky_relu"


def test_closed_form_metadata():
    assert get_activation("relu").slopes == (1.0, 0.0)
    assert get_activation("leaky_relu", negative_slope=0.3).slopes == (1.0, 0.3)
    assert get_activation("abs").slopes == (1.0, -1.0)
    assert get_activation("erf").closed_form == "erf"
    assert get_activation("tanh").closed_form == "" and get_activation("tanh").slopes is None
    assert get_activation("softplus", beta=4.0).scale == 0.25


def test_user_callable_gets_numerical_derivatives_with_a_warning():
    with pytest.warns(UserWarning, match="finite differences"):
        act = get_activation(np.sin)
    assert not act.exact_derivatives
    x = np.linspace(-2, 2, 9)
    assert np.max(np.abs(act.d1(x) - np.cos(x))) < 1e-8  # the accuracy the warning states
    assert np.max(np.abs(act.d2(x) + np.sin(x))) < 1e-5


def test_bad_activation_arguments_are_named():
    with pytest.raises(ValueError, match="unknown activation 'tanhh'.*valid names"):
        get_activation("tanhh")
    with pytest.raises(ValueError, match="celu: alpha must be non-zero"):
        get_activation("celu", alpha=0.0)
    with pytest.raises(ValueError, match="parameters"):
        get_activation(get_activation("relu"), negative_slope=0.1)
    with pytest.raises(ValueError, match="must be a name"):
        get_activation(3.0)


def test_derivative_of_selu_jumps_at_zero():
    act = get_activation("selu")
    left, right = act.d1(np.nextafter(0.0, -1.0)), act.d1(np.nextafter(0.0, 1.0))
    assert math.isclose(float(left), SELU_LAMBDA * SELU_ALPHA, rel_tol=1e-14)
    assert math.isclose(float(right), SELU_LAMBDA, rel_tol=1e-14)
