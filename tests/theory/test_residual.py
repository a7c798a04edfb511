"""Predicted residual-network SPPs against closed forms and a simulated layer."""

import json
import math

import numpy as np
import pytest

from signalprop.results import SPPResult
from signalprop.theory import get_activation
from signalprop.theory.residual import (
    _conv,
    _Padding,
    _padding_3x3,
    _Stats,
    nf_expected_variances,
    residual_schedule,
)

INV_PI = 1 / math.pi


def _relu_kernel(q, c):  # arc-cosine kernel, written out independently
    return q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)


def test_records_are_named_like_resnetv2_blocks():
    r = residual_schedule("bn", [2, 1, 3])
    assert r.kind == "predicted" and r.label == "bn (predicted)"
    assert r.names == ["stem", "stages.0.0", "stages.0.1", "stages.1.0", "stages.2.0",
                       "stages.2.1", "stages.2.2"]
    assert [x.index for x in r.records] == list(range(7))
    assert r.records[0].res_var is None and all(x.nonfinite == 0 for x in r.records)
    assert SPPResult.from_json(r.to_json()).avg_var == r.avg_var


def test_bn_relu_closed_form():
    r = residual_schedule("bn", [4, 3], stem_var=5.0, stem_sq_mean=2.0)
    # each branch is conv(relu(N(0, 1))) with He init: mean^2 1/pi, variance 1 - 1/pi;
    # a transition's projection shortcut is the same, so a stage restarts at 2x that.
    for stage, depth in enumerate([4, 3]):
        for b in range(depth):
            rec = r.records[1 + sum([4, 3][:stage]) + b]
            assert rec.res_var == pytest.approx(1 - INV_PI, abs=1e-12)
            assert rec.avg_sq_mean == pytest.approx((b + 2) * INV_PI, abs=1e-12)
            assert rec.avg_var == pytest.approx((b + 2) * (1 - INV_PI), abs=1e-12)


@pytest.mark.parametrize("alpha", [0.2, 0.5])
def test_nf_variance_grows_by_alpha_squared_and_resets(alpha):
    r = residual_schedule("nf", [3, 2], alpha=alpha)
    assert np.allclose(r.avg_var[1:], nf_expected_variances([3, 2], alpha), atol=1e-12)
    assert np.allclose(r.avg_sq_mean, 0.0, atol=1e-15)
    assert np.allclose(r.res_var[1:], 1.0, atol=1e-12)


def test_nf_with_other_activations_keeps_unit_branch_variance():
    for name in ("gelu", "silu", "tanh"):
        r = residual_schedule("nf", [2], activation=name)
        assert r.records[1].res_var == pytest.approx(1.0, abs=1e-10)


def test_unnormalized_relu_doubles_the_second_moment_and_drifts_to_the_mean():
    r = residual_schedule("none", [3, 3])
    total = np.array(r.avg_sq_mean) + np.array(r.avg_var)
    assert np.allclose(total, 2.0 ** np.arange(7), rtol=1e-12)  # He init: x2 per block
    share = np.array(r.avg_sq_mean[1:]) / total[1:]
    assert np.all(np.diff(share) > 0) and share[-1] > 0.8  # mean shift takes over
    assert r.records[-1].avg_sq_mean > r.records[-1].avg_var


def test_unnormalized_first_block_by_hand():
    # stem (M, v) = (0, 1). Shortcut T(0, 1) = (1/pi, 1 - 1/pi) (PAPERS: E[z] = N mu W_mean
    # with mu = E[relu] = 1/sqrt(2 pi), N Var w = 2). Branch T^3(0, 1); T keeps M + v = 1 and
    # sends M/S = c to c' = 2 K_relu(1, c).
    c = INV_PI
    for _ in range(2):
        c = 2 * _relu_kernel(1.0, c)
    r = residual_schedule("none", [1])
    assert r.records[1].avg_sq_mean == pytest.approx(INV_PI + c, abs=1e-12)
    assert r.records[1].res_var == pytest.approx(1 - c, abs=1e-12)


def test_skipinit_gain_zero_keeps_the_stem_statistics_between_transitions():
    r = residual_schedule("skipinit", [3, 2], stem_var=1.0)
    assert r.meta["gain"] == 0.0
    assert r.records[2].avg_var == r.records[1].avg_var == r.records[3].avg_var
    assert r.records[1].avg_var == pytest.approx(1 - INV_PI, abs=1e-12)  # projection only
    assert r.records[2].res_var > 0  # the branch is still computed (before the gain)
    one = residual_schedule("skipinit", [3, 2], gain=1.0)
    assert one.avg_var == residual_schedule("none", [3, 2]).avg_var


def test_the_channel_mean_model_against_a_simulated_layer():
    # relu -> linear layer with He init on data whose channel means are spread N(0, M):
    # measured average squared channel mean and variance vs the model (4.5 SE).
    rng = np.random.default_rng(0)
    act = get_activation("relu")
    m, v, channels, positions = 1.5, 0.5, 256, 2000
    sq, var = [], []
    for _ in range(20):
        x = rng.normal(0, math.sqrt(m), channels) + rng.normal(0, math.sqrt(v),
                                                              (positions, channels))
        w = rng.normal(0, math.sqrt(2 / channels), (channels, channels))
        y = np.maximum(x, 0) @ w.T
        sq.append(np.mean(y.mean(axis=0) ** 2))
        var.append(np.mean(y.var(axis=0)))
    pred = _conv(act, _Stats(0.0, m, v), 2.0, False, _Padding())
    for got, want in [(sq, pred.spread), (var, pred.var)]:
        se = np.std(got, ddof=1) / math.sqrt(len(got))
        assert abs(np.mean(got) - want) <= 4.5 * se + 2e-3 * want, (np.mean(got), want, se)


def test_padding_factors():
    assert _padding_3x3((2, 2), 1)[0].rho_v == pytest.approx(4 / 9)
    assert _padding_3x3((1, 1), 1)[0].rho_v == pytest.approx(1 / 9)
    pad, size = _padding_3x3((64, 64), 2)
    assert size == (32, 32) and 0.97 < pad.rho_v < 1
    assert _padding_3x3(None, 1)[0] == _Padding()
    small = residual_schedule("nf", [2, 2, 2, 2], spatial=16)
    large = residual_schedule("nf", [2, 2, 2, 2])
    assert small.records[-1].res_var < 0.6 < large.records[-1].res_var


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown norm 'gn'; valid: bn, none, nf, skipinit"):
        residual_schedule("gn", [3])
    with pytest.raises(ValueError, match=r"depths\[1\] must be an integer >= 1, got 0"):
        residual_schedule("bn", [3, 0])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        residual_schedule("nf", [3], alpha=0.0)
    with pytest.raises(ValueError, match="stem_var must be >= 0"):
        residual_schedule("nf", [3], stem_var=-1)
    with pytest.raises(ValueError, match="at least one stage"):
        residual_schedule("nf", [])
    with pytest.raises(ValueError, match="unknown activation"):
        residual_schedule("bn", [1], activation="nope")
    json.dumps(residual_schedule("none", [1]).to_dict())
