"""mean_se / diff_se / separated against brute-force NumPy loops."""

import math

import numpy as np
import pytest

from signalprop.experiments import diff_se, mean_se, separated


def _brute_se(v: list[float]) -> float:
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v))


@pytest.mark.parametrize("n", [2, 3, 7])
def test_mean_se_matches_loop(n: int) -> None:
    v = list(np.random.default_rng(n).normal(1.0, 2.0, size=n))
    m, se = mean_se(v)
    assert m == pytest.approx(sum(v) / n, rel=1e-12)
    assert se == pytest.approx(_brute_se(v), rel=1e-12)


def test_single_value_has_nan_se_and_empty_is_an_error() -> None:
    assert mean_se([3.0])[0] == 3.0 and math.isnan(mean_se([3.0])[1])
    with pytest.raises(ValueError, match="at least one"):
        mean_se([])


def test_diff_se_is_welch_combination() -> None:
    a, b = [1.0, 2.0, 4.0], [0.5, 0.7, 0.2, 0.1]
    d, se = diff_se(a, b)
    assert d == pytest.approx(sum(a) / 3 - sum(b) / 4)
    assert se == pytest.approx(math.hypot(_brute_se(a), _brute_se(b)))


def test_separated_uses_k_standard_errors() -> None:
    a, b = [1.0, 1.2, 1.1], [0.0, 0.2, 0.1]
    d, se = diff_se(a, b)
    assert separated(a, b, k=0.99 * d / se)
    assert not separated(a, b, k=1.01 * d / se)
    assert not separated(b, a)  # direction matters
    assert not separated([2.0], [1.0])  # one seed: no spread, never separated
    assert not separated([1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="k must be"):
        separated(a, b, k=-1)
