"""Gaussian expectations: closed forms vs quadrature vs mpmath vs Monte Carlo.

Accuracy promised (issue 3): |error| <= 1e-10 for smooth and <= 1e-9 for kinked activations
against a high-precision reference, for q in [1e-4, 1e2] and c in [-1, 1]. The mpmath
references live in data/gaussian_reference.json (generator: data/make_reference.py); two
entries are recomputed here to show the file matches its generator.
"""

import json
import math
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest

from signalprop import theory
from signalprop.theory import (
    expect_dphi2,
    expect_dphi_dphi,
    expect_phi,
    expect_phi2,
    expect_phi2_dq,
    expect_phi_phi,
    gauss_expect,
    gauss_expect2,
    get_activation,
)

REF = json.loads((Path(__file__).parent / "data" / "gaussian_reference.json").read_text())
CLOSED = ["relu", "leaky_relu:negative_slope=0.2", "abs", "identity", "erf"]


def _act(key):
    name, _, param = key.partition(":")
    params = {}
    if param:
        k, v = param.split("=")
        params[k] = float(v)
    return get_activation(name, **params)


def _tol(act):
    return 1e-9 if act.kinks else 1e-10


ONE_D = {
    "phi": expect_phi,
    "phi2": expect_phi2,
    "dphi2": expect_dphi2,
    "phi2_dq": expect_phi2_dq,
    "phi_phi_m1": lambda a, q: expect_phi_phi(a, q, -1.0),
    "dphi_dphi_m1": lambda a, q: expect_dphi_dphi(a, q, -1.0),
    "phi_phi_p1": lambda a, q: expect_phi_phi(a, q, 1.0),  # c = +1 is E[phi^2]
    "dphi_dphi_p1": lambda a, q: expect_dphi_dphi(a, q, 1.0),
}
_ALIAS = {"phi_phi_p1": "phi2", "dphi_dphi_p1": "dphi2"}


def test_reference_file_covers_every_activation_and_case():
    assert len(REF["one_d"]) == 17
    for entries in REF["one_d"].values():
        assert set(entries) == {"1e-4", "1e-2", "0.3", "1", "3", "10", "100"}
    have = {(r["name"], r["which"], r["q"], r["c"]) for r in REF["two_d"]}
    numeric = [k for k in REF["one_d"] if k.split(":")[0] not in
               ("relu", "leaky_relu", "abs", "identity", "erf")
               and k not in ("elu:alpha=0.5", "celu:alpha=2.0", "softplus:beta=3.0")]
    for name in numeric:
        for which in ("phi_phi", "dphi_dphi"):
            for q, c in (("2", "0.9"), ("10", "0.99")):
                assert (name, which, q, c) in have, (name, which, q, c)


@pytest.mark.parametrize("key", sorted(REF["one_d"]))
def test_one_dimensional_expectations_match_mpmath(key):
    act = _act(key)
    entries = REF["one_d"][key]
    qs = np.array([float(q) for q in entries])
    worst = 0.0
    for what, fn in ONE_D.items():
        got = np.asarray(fn(act, qs))  # vectorised over q
        want = np.array([entries[q][_ALIAS.get(what, what)] for q in entries])
        worst = max(worst, float(np.max(np.abs(got - want))))
    assert worst <= _tol(act), (key, worst)


@pytest.mark.parametrize("entry", REF["two_d"], ids=lambda r: f"{r['name']}-{r['which']}-"
                         f"{r['q']}-{r['c']}")
def test_two_dimensional_expectations_match_mpmath(entry):
    act = _act(entry["name"])
    fn = expect_phi_phi if entry["which"] == "phi_phi" else expect_dphi_dphi
    got = fn(act, float(entry["q"]), float(entry["c"]))
    assert abs(got - entry["value"]) <= _tol(act), (entry, got)


def test_reference_file_matches_its_generator():
    mp.mp.dps = 25
    s = mp.sqrt(mp.mpf(3))
    tanh2 = mp.quad(lambda t: mp.tanh(s * t) ** 2 * mp.npdf(t), [-mp.inf, 0, mp.inf])
    assert abs(float(tanh2) - REF["one_d"]["tanh"]["3"]["phi2"]) < 1e-15
    lam, alp = mp.mpf(theory.SELU_LAMBDA), mp.mpf(theory.SELU_ALPHA)
    s = mp.sqrt(mp.mpf("0.3"))
    # E[selu'(u)^2]: lam^2 on u > 0, (lam alp e^u)^2 on u < 0
    d2 = mp.quad(lambda t: (lam * alp * mp.exp(s * t)) ** 2 * mp.npdf(t), [-mp.inf, 0]) + (
        lam**2 / 2)
    assert abs(float(d2) - REF["one_d"]["selu"]["0.3"]["dphi2"]) < 1e-14


QS = np.array([1e-4, 3e-3, 0.1, 0.7, 1.0, 4.0, 25.0, 100.0])
CS = np.array([-1.0, -0.999999, -0.9, -0.3, 0.0, 0.4, 0.95, 0.9999, 0.999999, 1.0])


@pytest.mark.parametrize("key", CLOSED)
def test_closed_forms_agree_with_quadrature(key):
    act = _act(key)
    q, c = np.meshgrid(QS, CS)
    tol = _tol(act)
    # 1-D: the generic quadrature path, used for every non-closed-form activation
    for fn, f in [(expect_phi, act.fn), (expect_phi2, lambda u: act.fn(u) ** 2),
                  (expect_dphi2, lambda u: act.d1(u) ** 2)]:
        quad = gauss_expect(f, QS, act.kinks, scale=act.scale)
        assert np.max(np.abs(quad - fn(act, QS))) <= tol
    # 2-D, including |c| -> 1 where the inner Gaussian collapses onto the kink
    quad = gauss_expect2(act.fn, act.fn, q, c, act.kinks, act.kinks)
    assert np.max(np.abs(quad - expect_phi_phi(act, q, c))) <= tol
    quad = gauss_expect2(act.d1, act.d1, q, c, act.kinks, act.kinks)
    assert np.max(np.abs(quad - expect_dphi_dphi(act, q, c))) <= tol


def test_closed_forms_match_mpmath_formulas():
    # Independent high-precision evaluation of the arc-cosine and erf kernels.
    mp.mp.dps = 30
    for q, c in [(0.3, -0.7), (2.0, 0.5), (50.0, 0.99)]:
        qm, cm = mp.mpf(q), mp.mpf(c)
        relu = qm / (2 * mp.pi) * (mp.sqrt(1 - cm**2) + (mp.pi - mp.acos(cm)) * cm)
        assert abs(expect_phi_phi("relu", q, c) - float(relu)) < 1e-13 * max(1, q)
        step = (mp.pi - mp.acos(cm)) / (2 * mp.pi)
        assert abs(expect_dphi_dphi("relu", q, c) - float(step)) < 1e-15
        erf = 2 / mp.pi * mp.asin(2 * qm * cm / (1 + 2 * qm))
        assert abs(expect_phi_phi("erf", q, c) - float(erf)) < 1e-15


@pytest.mark.parametrize("name", ["tanh", "gelu", "selu", "relu6"])
def test_price_theorem_links_the_two_kernels(name):
    # dE[phi(u1)phi(u2)]/dc = q E[phi'(u1)phi'(u2)]: an internal consistency check that
    # also exercises the 2-D rule at intermediate c.
    q, c, h = 1.7, 0.35, 1e-4
    deriv = (expect_phi_phi(name, q, c + h) - expect_phi_phi(name, q, c - h)) / (2 * h)
    assert abs(deriv - q * expect_dphi_dphi(name, q, c)) < 1e-7


@pytest.mark.parametrize("name", ["relu", "tanh", "selu"])
def test_monte_carlo_agrees_within_its_standard_error(name):
    rng = np.random.default_rng(1)
    act = get_activation(name)
    q, c, n = 1.3, 0.6, 400_000
    z1, z2 = rng.standard_normal((2, n))
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    for sample, exact in [(act.fn(u1) * act.fn(u2), expect_phi_phi(act, q, c)),
                          (act.d1(u1) * act.d1(u2), expect_dphi_dphi(act, q, c)),
                          (act.fn(u1) ** 2, expect_phi2(act, q))]:
        se = sample.std() / math.sqrt(n)
        # 4.5 standard errors: a false alarm in 1 run in ~150,000 per comparison
        assert abs(sample.mean() - exact) < 4.5 * se, (sample.mean(), exact, se)


def test_zero_variance_is_the_limit_from_above():
    assert expect_phi2("tanh", 0.0) == 0.0
    assert expect_dphi2("relu", 0.0) == 0.5  # mean of the one-sided slopes 1 and 0
    arc = 0.25 + math.asin(0.5) / (2 * math.pi)
    assert expect_dphi_dphi("relu", 0.0, 0.5) == pytest.approx(arc)
    step = get_activation("relu").d1
    assert gauss_expect2(step, step, 0.0, 0.5, (0.0,), (0.0,)) == pytest.approx(
        0.25 + math.asin(0.5) / (2 * math.pi), abs=1e-13)


def test_vectorised_matches_scalar():
    qs = np.array([0.2, 1.0, 7.0])
    vec = expect_phi2("gelu", qs)
    assert vec.shape == (3,)
    assert np.allclose(vec, [expect_phi2("gelu", q) for q in qs], rtol=0, atol=1e-15)
    grid = expect_phi_phi("tanh", qs[:, None], np.array([0.1, 0.5]))
    assert grid.shape == (3, 2)


@pytest.mark.parametrize("bad,match", [
    (dict(q=-1.0), r"q must be a finite variance >= 0, got -1.0 \(valid range \[0, inf\)\)"),
    (dict(q=float("nan")), r"q must be a finite variance >= 0, got nan"),
    (dict(q=1.0, c=1.5), r"c must be a correlation in \[-1, 1\], got 1.5"),
])
def test_bad_arguments_name_the_parameter_value_and_range(bad, match):
    with pytest.raises(ValueError, match=match):
        if "c" in bad:
            expect_phi_phi("tanh", bad["q"], bad["c"])
        else:
            expect_phi2("tanh", bad["q"])


def test_overflowing_activation_is_refused_not_nan():
    def cube_exp(u):
        return np.exp(u**3)

    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"overflows .* q = 50.0"):
        expect_phi2(cube_exp, 50.0)
    with pytest.raises(ValueError, match="overflows"):
        gauss_expect(lambda u: np.exp(u * u), 100.0)
