"""The two-stage dynamic programme against exhaustive search over every plan (every set
of merge boundaries S and kept activations A inside it) on small random tables; the
search lives with the depth-dp claim, which runs the same comparison."""

import itertools
import random
import time

import numpy as np
import pytest

from signalprop.convert.compress._dp import solve, stage1
from signalprop.experiments.claims.compression._brute import brute_force, random_tables


def _plan_cost_and_value(sol, seg, act, imp, n):
    cuts = [0, *sol.boundaries, n]
    cost = sum(seg[i, j] for i, j in zip(cuts[:-1], cuts[1:])) + sum(act[k] for k in sol.kept)
    kept = [0, *sol.kept, n]
    return cost, sum(imp[x, y] for x, y in zip(kept[:-1], kept[1:]))


@pytest.mark.parametrize("seed", range(8))
def test_dp_equals_exhaustive_search(seed):
    rng = random.Random(seed)
    for _ in range(12):
        n = rng.randint(1, 7)
        seg, act, imp, drop, forced = random_tables(rng, n)
        everything = float(np.nansum(np.where(np.isfinite(seg), seg, 0)) + act.sum())
        budget = rng.randint(1, int(everything) + 1)
        sol = solve(seg, act, imp, float(budget), droppable=drop, forced=forced,
                    resolution=budget)  # one unit = one second: no rounding
        ref = brute_force(seg, act, imp, drop, forced, budget)
        if ref is None:
            assert sol is None
            continue
        assert sol is not None
        assert sol.importance == pytest.approx(ref[0], abs=1e-9)
        assert sol.cost_units == ref[1]
        cost, value = _plan_cost_and_value(sol, seg, act, imp, n)
        assert cost == pytest.approx(sol.seconds) and cost <= budget
        assert value == pytest.approx(sol.importance, abs=1e-9)
        assert set(sol.kept) <= set(sol.boundaries)
        assert all(k in sol.kept for k in range(n + 1) if forced[k])


def test_stage1_is_the_fastest_partition():
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randint(1, 7)
        seg, *_ = random_tables(rng, n)
        units = np.where(np.isfinite(seg), seg, 10**9).astype(np.int64)
        topt, _ = stage1(units)
        for a in range(n):
            for b in range(a + 1, n + 1):
                best = min(sum(units[i, j] for i, j in zip([a, *s], [*s, b]))
                           for r in range(b - a) for s in itertools.combinations(
                               range(a + 1, b), r))
                assert topt[a, b] == best


def test_latencies_round_up_so_the_plan_stays_within_budget():
    seg = np.array([[np.inf, 0.4, 0.7], [np.inf, np.inf, 0.4], [np.inf] * 3])
    act, imp = np.array([0.0, 0.25, 0.0]), np.zeros((3, 3))
    imp[0, 1] = imp[1, 2] = 0.0
    imp[0, 2] = -1.0
    drop, forced = np.array([False, True, False]), np.zeros(3, bool)
    sol = solve(seg, act, imp, 1.05, droppable=drop, forced=forced, resolution=21)
    assert sol.kept == [1] and sol.seconds == pytest.approx(1.05)
    sol = solve(seg, act, imp, 1.04, droppable=drop, forced=forced, resolution=1000)
    assert sol.kept == [] and sol.seconds <= 1.04  # keeping it would exceed the budget
    assert solve(seg, act, imp, 0.5, droppable=drop, forced=forced) is None
    with pytest.raises(ValueError, match="budget"):
        solve(seg, act, imp, 0.0, droppable=drop, forced=forced)


def test_fifty_layers_solve_quickly():
    rng = random.Random(0)
    seg, act, imp, drop, forced = random_tables(rng, 50)
    t0 = time.process_time()
    sol = solve(seg, act, imp, float(np.nansum(seg[np.isfinite(seg)])) / 20, droppable=drop,
                forced=forced, resolution=1000)
    assert sol is not None
    assert time.process_time() - t0 < 5.0  # ~0.3 s on a quiet core; bench_compress reports
