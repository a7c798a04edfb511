"""Attention-sum predictions against Monte Carlo (tolerances: 4 standard errors) and the
exact small cases."""

import math

import numpy as np
import pytest

from signalprop import theory


def _weights(s, normalize):
    if normalize == "softmax":
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return {"none": s, "relu": np.maximum(s, 0), "sigmoid": 1 / (1 + np.exp(-s))}[normalize]


@pytest.mark.parametrize("normalize", theory.NORMALIZATIONS)
@pytest.mark.parametrize("length,std", [(2, 0.5), (10, 1.0), (100, 2.0)])
def test_weight_moments_against_monte_carlo(normalize, length, std):
    rng = np.random.default_rng(0)
    s = 0.3 + std * rng.standard_normal((20000, length))
    w = _weights(s, normalize)
    pred = theory.attention_weights(length, normalize, score_mean=0.3, score_std=std)
    for key, sample in (("sum_mean", w.sum(1)), ("sum_sq_mean", w.sum(1) ** 2),
                        ("sq_sum_mean", (w**2).sum(1))):
        se = sample.std() / math.sqrt(sample.size)
        assert abs(pred[key][0] - sample.mean()) <= 4 * se + 1e-12, key


def test_softmax_exact_cases():
    w = theory.attention_weights([1, 3, 7], "softmax", score_std=0.0)
    np.testing.assert_allclose(w["sq_sum_mean"], [1.0, 1 / 3, 1 / 7], rtol=1e-12)
    one = theory.attention_weights([1], "softmax", score_mean=-3.0, score_std=2.5)
    assert one["sq_sum_mean"][0] == pytest.approx(1.0, abs=1e-10)
    big = theory.attention_weights([10**5], "softmax", score_std=1.0)["sq_sum_mean"][0]
    assert big == pytest.approx(math.e / 10**5, rel=1e-3)  # e^(sigma^2) / L for large L


@pytest.mark.parametrize("normalize", ["softmax", "none"])
def test_attention_sum_against_simulated_outputs(normalize):
    rng = np.random.default_rng(3)
    lengths = [4, 32]
    pred = theory.attention_sum(lengths, normalize, score_std=0.8, value_mean=0.5,
                                value_std=1.5)
    for rec, length in zip(pred.records, lengths):
        s = 0.8 * rng.standard_normal((40000, length))
        v = 0.5 + 1.5 * rng.standard_normal((40000, length))
        o = (_weights(s, normalize) * v).sum(1)
        se_mean = o.std() / math.sqrt(o.size)
        assert abs(math.sqrt(rec.avg_sq_mean) - abs(o.mean())) <= 4 * se_mean
        se_var = o.var() * math.sqrt(2 / o.size) * 2  # kurtosis margin
        assert abs(rec.avg_var - o.var()) <= 4 * se_var
        assert rec.rms == pytest.approx(math.sqrt(rec.avg_sq_mean + rec.avg_var))


def test_sums_grow_without_softmax_and_stay_with_it():
    lengths = [1, 10, 100, 1000]
    none = theory.attention_sum(lengths, "none", score_mean=0.5, score_std=0.0,
                                value_mean=1.0, value_std=0.0)
    soft = theory.attention_sum(lengths, "softmax", value_mean=1.0, value_std=0.0)
    assert [r.avg_sq_mean for r in none.records] == [0.25 * n * n for n in lengths]
    assert [r.avg_sq_mean for r in soft.records] == [1.0] * 4
    assert soft.kind == "predicted" and none.meta["weight_sum"] == [0.5 * n for n in lengths]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="normalize must be one of"):
        theory.attention_weights(3, "softermax")
    with pytest.raises(ValueError, match="lengths must be integers >= 1"):
        theory.attention_weights([0, 2])
    with pytest.raises(ValueError, match="score_std"):
        theory.attention_weights(3, score_std=-1.0)
    with pytest.raises(ValueError, match="value_std"):
        theory.attention_sum(3, value_std=-1.0)
