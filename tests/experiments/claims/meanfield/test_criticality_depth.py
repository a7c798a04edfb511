"""criticality-depth: decide() on synthetic grids -- nulls where trainability depends on
depth alone (or peaks without following xi_c) must fail, the 6 xi_c rule at the pilot's
noise must pass; the rule fits against brute force; smoke run."""

import math
from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.meanfield.criticality_depth import (
    SIZES,
    best_depth_rules,
    best_xi_rule,
    decide,
)

SIGMAS = SIZES["quick"]["sigma_w2"]
DEPTHS = SIZES["quick"]["depths"]
LRS = SIZES["quick"]["lrs"]
# theory.mean_field("tanh", s, 0.05).xi_c at the quick grid
XI = {0.5: 1.19, 0.8: 2.30, 1.2: 5.94, 1.76: 4911.7, 3.0: 9.05, 6.0: 5.42, 12.0: 4.03}
NOISE = 0.10  # per-seed s.d. of the final training accuracy near the boundary (pilot)


def _measurements(acc_of, seeds=(0, 1), rng=None) -> dict:
    """``acc_of(s, d)``: the true training accuracy of a cell at its best lr; the other lrs
    reach part of it; per-seed noise of s.d. NOISE when ``rng`` is given."""
    train = {}
    for s in SIGMAS:
        for d in DEPTHS:
            for i, lr in enumerate(LRS):
                true = 0.1 + (acc_of(s, d) - 0.1) * (1.0, 0.8, 0.6)[i]
                noise = rng.normal(0, NOISE, len(seeds)) if rng is not None else np.zeros(len(seeds))
                train[f"{s:g},{d},{lr:g}"] = [float(v) for v in np.clip(true + noise, 0.0, 1.0)]
    return {"sigma_w2": SIGMAS, "depths": DEPTHS, "lrs": LRS, "critical_sigma_w2": 1.7610,
            "xi_c": {f"{s:g}": x for s, x in XI.items()}, "train_acc": train,
            "half_train_acc": train, "diverged": {}}


def _paper_rule(s: float, d: int) -> float:
    """Trains (0.9) well below 6 xi_c, chance (0.1) well above, a smooth edge between."""
    return 0.1 + 0.8 / (1.0 + math.exp((math.log(d) - math.log(6 * XI[s])) / 0.15))


def test_the_6_xi_rule_passes_at_the_pilot_noise() -> None:
    out = decide(_measurements(_paper_rule))
    assert out.reproduced, out.effect
    assert out.details["max_trainable_depth"] == {
        "0.5": 8, "0.8": 16, "1.2": 32, "1.76": 48, "3": 48, "6": 32, "12": 16}
    passed = [decide(_measurements(_paper_rule, rng=np.random.default_rng(i))).reproduced
              for i in range(20)]
    assert sum(passed) >= 18  # power at the pilot's noise


def test_depth_only_null_fails() -> None:
    out = decide(_measurements(lambda s, d: 0.9 if d <= 16 else 0.1))
    assert not out.reproduced
    assert not out.details["peak_at_critical"] and not out.details["xi_rule_wins"]
    assert out.details["depth_rules"] == [16] and out.details["depth_rule_fit"] == 35
    for i in range(10):  # with noise too
        out = decide(_measurements(lambda s, d: 0.9 if d <= 16 else 0.1,
                                   rng=np.random.default_rng(i)))
        assert not out.reproduced


def test_a_peak_that_does_not_follow_xi_c_fails() -> None:
    # deepest in the middle of the grid, but the same depth from 0.8 to 6: depth explains
    # all but two cells, xi_c does not
    out = decide(_measurements(lambda s, d: 0.9 if d <= (16 if s in (0.5, 12.0) else 32)
                               else 0.1))
    assert out.details["peak_at_critical"] and not out.details["xi_rule_wins"]
    assert not out.reproduced


def test_a_moved_peak_fails() -> None:
    out = decide(_measurements(lambda s, d: _paper_rule(s, d) if s != 1.76 else
                               (0.9 if d <= 8 else 0.1)))
    assert not out.details["peak_at_critical"] and not out.reproduced


def test_rule_fits_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        trains = {(s, d): bool(rng.random() < 0.5) for s in SIGMAS for d in DEPTHS}
        ratios = sorted({d / XI[s] for s, d in trains})
        # every distinct rule: k below all ratios, between two, or above all
        ks = [ratios[0] / 2, *[(a + b) / 2 for a, b in zip(ratios, ratios[1:])], ratios[-1] * 2]
        fits = {k: sum((d <= k * XI[s]) == t for (s, d), t in trains.items()) for k in ks}
        k, n = best_xi_rule(trains, XI)
        assert n == max(fits.values())
        assert sum((d / XI[s] <= k) == t for (s, d), t in trains.items()) == n
        rules, n_d = best_depth_rules(trains)
        by_d = {D: sum((d <= D) == t for (s, d), t in trains.items()) for D in range(0, 60)}
        assert n_d == max(by_d.values())
        assert set(rules) == {D for D in [0, *DEPTHS] if by_d[D] == n_d}


def test_diverged_runs_are_counted() -> None:
    m = _measurements(_paper_rule)
    m["diverged"] = {"12,48,0.025": 2, "6,48,0.025": 1}
    out = decide(m)
    assert out.details["n_diverged"] == 3 and "3 diverged runs" in out.effect


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("criticality-depth", tmp_path)  # files written, result.json re-decides alike
