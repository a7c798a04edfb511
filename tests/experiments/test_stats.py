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


def test_interaction_se_is_the_difference_of_two_welch_differences() -> None:
    from signalprop.experiments._stats import interaction_se

    rng = np.random.default_rng(1)
    a, b, c, d = (list(rng.normal(m, 0.1, size=n)) for m, n in ((1, 4), (0.2, 5), (0.5, 3),
                                                                  (0.4, 6)))
    got, se = interaction_se(a, b, c, d)
    means = [sum(v) / len(v) for v in (a, b, c, d)]
    assert got == pytest.approx((means[0] - means[1]) - (means[2] - means[3]), rel=1e-12)
    assert se == pytest.approx(math.sqrt(sum(_brute_se(v) ** 2 for v in (a, b, c, d))),
                               rel=1e-12)


def test_slope_se_matches_polyfit_and_monte_carlo() -> None:
    from signalprop.experiments._stats import slope_se

    xs, means, ses = [4.0, 6.0, 8.0, 10.0], [0.0, 0.02, 0.05, 0.1], [0.01, 0.02, 0.01, 0.03]
    slope, intercept, se = slope_se(xs, means, ses)
    ref = np.polyfit(xs, means, 1)
    assert (slope, intercept) == pytest.approx((ref[0], ref[1]), rel=1e-10)
    # the s.d. of refitted slopes over 20000 noisy draws of the means; its relative
    # standard error is 1 / sqrt(2 * 20000) = 0.5%, the tolerance 2%
    rng = np.random.default_rng(0)
    draws = np.asarray(means) + rng.normal(size=(20000, 4)) * np.asarray(ses)
    slopes = np.polyfit(xs, draws.T, 1)[0]
    assert se == pytest.approx(slopes.std(ddof=1), rel=0.02)
    with pytest.raises(ValueError, match="two distinct"):
        slope_se([1.0, 1.0], [0.0, 1.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="one value per point"):
        slope_se([1.0, 2.0], [0.0], [0.1, 0.1])


@pytest.mark.parametrize("terms", [2, 4])
def test_seeds_needed_reaches_its_power_in_simulation(terms: int) -> None:
    """With the returned n, a true effect passes a 2-s.e. test (s.e. estimated from the
    seeds, as decide does) in about 90% of simulated experiments; with one seed less the
    normal approximation's power is below 0.9."""
    from signalprop.experiments._stats import seeds_needed

    sigma, effect = 0.03, 0.06
    n = seeds_needed(sigma, effect, terms=terms)
    z = 2 + 1.2815515655446004
    assert terms * (z * sigma / effect) ** 2 <= n < terms * (z * sigma / effect) ** 2 + 1
    rng = np.random.default_rng(3)
    groups = rng.normal(0.0, sigma, size=(4000, terms, n))
    signs = np.array([1, -1, -1, 1][:terms]) if terms == 4 else np.array([1, -1])
    est = effect + (groups.mean(axis=2) * signs).sum(axis=1)
    se = np.sqrt((groups.var(axis=2, ddof=1) / n).sum(axis=1))
    # the estimated s.e. (few seeds) costs a little power against the normal approximation
    assert 0.8 < (est > 2 * se).mean() < 0.97


def test_positive_test_reports_the_detectable_effect() -> None:
    from signalprop.experiments._stats import positive_test

    t = positive_test(0.05, 0.03)
    assert not t["passes"] and t["threshold"] == pytest.approx(0.06)
    assert t["detectable"] == pytest.approx(0.03 * (2 + 1.2815515655446004))
    assert not positive_test(0.5, math.nan)["passes"]
    assert not positive_test(-0.5, 0.01)["passes"]
