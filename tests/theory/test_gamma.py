"""gamma = 1/std(g(z)): exact for ReLU, high-precision reference for the rest."""

import math

import mpmath as mp
import numpy as np
import pytest

from signalprop import theory
from signalprop.theory import DEEPMIND_GAMMA, gamma

mp.mp.dps = 30

# Reference activations written independently in mpmath (not via the registry).
_MP_ACTS = {
    "relu": (lambda x: mp.mpf(0) if x < 0 else x, [0]),
    "leaky_relu": (lambda x: x if x > 0 else mp.mpf("0.01") * x, [0]),
    "gelu": (lambda x: x * mp.ncdf(x), []),
    "silu": (lambda x: x / (1 + mp.exp(-x)), []),
    "swish": (lambda x: x / (1 + mp.exp(-x)), []),
    "tanh": (lambda x: mp.tanh(x), []),
    "sigmoid": (lambda x: 1 / (1 + mp.exp(-x)), []),
    "elu": (lambda x: x if x > 0 else mp.expm1(x), [0]),
    "selu": (
        lambda x: mp.mpf(theory.SELU_LAMBDA)
        * (x if x > 0 else mp.mpf(theory.SELU_ALPHA) * mp.expm1(x)),
        [0],
    ),
    "celu": (lambda x: x if x > 0 else mp.expm1(x), [0]),
    "softplus": (lambda x: mp.log1p(mp.exp(x)), []),
    "mish": (lambda x: x * mp.tanh(mp.log1p(mp.exp(x))), []),
    "relu6": (lambda x: min(max(x, mp.mpf(0)), mp.mpf(6)), [0, 6]),
    "identity": (lambda x: x, []),
}


def _mp_gamma(f, kinks):
    pts = [-mp.inf, *kinks, mp.inf]
    dens = lambda x: mp.npdf(x)  # noqa: E731
    m1 = mp.quad(lambda x: f(x) * dens(x), pts)
    m2 = mp.quad(lambda x: f(x) ** 2 * dens(x), pts)
    return 1 / mp.sqrt(m2 - m1**2)


def test_relu_gamma_is_the_closed_form():
    exact = math.sqrt(2.0 / (1.0 - 1.0 / math.pi))
    assert abs(gamma("relu") - exact) < 1e-12
    # and the quadrature path (a user callable) agrees with it
    with pytest.warns(UserWarning, match="finite differences"):
        assert abs(gamma(lambda x: np.maximum(x, 0.0)) - exact) < 1e-6


@pytest.mark.parametrize("name", sorted(_MP_ACTS))
def test_gamma_matches_high_precision_quadrature(name):
    f, kinks = _MP_ACTS[name]
    ref = float(_mp_gamma(f, kinks))
    assert abs(gamma(name) - ref) < 1e-6 * ref, (name, gamma(name), ref)
    # the actual accuracy is far better than the promised 1e-6
    assert abs(gamma(name) - ref) < 1e-10 * ref


@pytest.mark.parametrize("name", sorted(DEEPMIND_GAMMA))
def test_gamma_within_deepmind_table(name):
    published = DEEPMIND_GAMMA[name]
    assert abs(gamma(name) - published) <= 1e-3 * published


def test_parameterised_leaky_relu_closed_form():
    a = 0.2
    var = (1 + a * a) / 2 - ((1 - a) ** 2) / (2 * math.pi)
    assert abs(gamma("leaky_relu", negative_slope=a) - var**-0.5) < 1e-10


def test_user_callable_warns_and_is_exact_for_tanh():
    with pytest.warns(UserWarning):
        g = gamma(np.tanh)
    assert abs(g - gamma("tanh")) < 1e-9


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'relux'.*gelu.*tanh"):
        gamma("relux")


def test_bad_parameter_is_named():
    with pytest.raises(ValueError, match="leaky_relu"):
        gamma("leaky_relu", slope=0.2)


def test_zero_variance_activation_is_rejected():
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="zero output variance"):
        gamma(lambda x: np.zeros_like(x) + 1.0)


def test_theory_does_not_import_torch():
    import subprocess
    import sys

    # torch is made unimportable: theory and results must load (and work) without it.
    code = (
        "import sys; sys.modules['torch'] = None; "
        "import signalprop.theory as t, signalprop.results; "
        "assert abs(t.gamma('tanh') - 1.5925374197) < 1e-9"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
