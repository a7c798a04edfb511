"""bn-batchsize: the smoke run writes its files and prints a verdict line (verdict not
asserted); the lr grid is factor-2 steps around square-root scaling; decide passes a BN
lead that grows with the batch size at the pilot's noise and fails the nulls (no lead; a
constant lead; a shrinking one), in simulated experiments; the judged seeds cover the
pilot's variance."""

import math
from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments._stats import seeds_needed
from signalprop.experiments.claims.normfree.bn_batchsize import (
    EFFECT_OF_INTEREST,
    PILOT_SD,
    SIZES,
    decide,
    lr_grid,
)

BATCHES = SIZES["quick"]["batches"]
N = len(SIZES["quick"]["judge_seeds"])
SD = max(PILOT_SD.values())


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("bn-batchsize", tmp_path)
    m = res.measurements
    batches = SIZES["smoke"]["batches"]
    gaps = [np.mean(m["cells"][f"bn/B{b}"]["test_acc"])
            - np.mean(m["cells"][f"skipinit/B{b}"]["test_acc"]) for b in batches]
    for b, g in zip(batches, gaps):
        assert m["decision"]["gap"][f"B{b}"]["gap"] == pytest.approx(g, abs=1e-12)
    assert m["decision"]["slope_per_doubling"]["estimate"] == pytest.approx(
        np.polyfit(np.log2(batches), gaps, 1)[0], abs=1e-12)


def test_lr_grid_is_factor_two_steps_around_square_root_scaling() -> None:
    assert lr_grid((0.05, 16), [-3, 0, 3], 16) == [0.00625, 0.05, 0.4]
    assert lr_grid((0.05, 16), [0], 1024) == [0.4]
    for b in BATCHES:
        grid = lr_grid(tuple(SIZES["quick"]["lr_center"]), SIZES["quick"]["lr_steps"], b)
        assert all(hi / lo == pytest.approx(2.0) for lo, hi in zip(grid, grid[1:]))


def _experiment(rng, gap: dict[int, float], n: int = N) -> dict:
    cells = {}
    for b in BATCHES:
        for norm, mean in (("bn", 0.65), ("skipinit", 0.65 - gap[b])):
            acc = rng.normal(mean, SD, size=n).tolist()
            cells[f"{norm}/B{b}"] = {"test_acc": acc, "diverged": [False] * n, "lr": 0.1,
                                     "largest_stable_lr": 0.4}
    return {"setup": {"batch_sizes": BATCHES}, "cells": cells}


def _pass_rate(gap: dict[int, float], trials: int = 300) -> float:
    rng = np.random.default_rng(0)
    return float(np.mean([decide(_experiment(rng, gap)).reproduced for _ in range(trials)]))


def test_decide_passes_a_growing_lead_at_the_pilots_noise() -> None:
    # the smallest growth pre-registered: 0 at 16 to EFFECT_OF_INTEREST at 1024
    growing = {b: EFFECT_OF_INTEREST * (math.log2(b) - 4) / 6 for b in BATCHES}
    assert _pass_rate(growing) >= 0.85
    assert _pass_rate({16: 0.0, 64: 0.02, 256: 0.08, 1024: 0.13}) == 1.0


def test_decide_fails_the_nulls() -> None:
    assert _pass_rate(dict.fromkeys(BATCHES, 0.0)) < 0.05
    assert _pass_rate(dict.fromkeys(BATCHES, 0.1)) < 0.05  # BN simply better everywhere
    assert _pass_rate({16: 0.1, 64: 0.07, 256: 0.03, 1024: 0.0}) == 0.0
    # a lead that grows from SkipInit ahead to a tie fails the second part
    out = decide(_experiment(np.random.default_rng(1), {16: -0.15, 64: -0.1, 256: -0.05,
                                                        1024: 0.0}))
    assert out.details["slope_per_doubling"]["passes"] and not out.reproduced


def test_judged_seeds_cover_the_pilots_variance() -> None:
    xs = np.log2(BATCHES)
    terms = 2 * float(((xs - xs.mean()) ** 2).sum() ** -1)  # 2 * sum c_i^2
    slope = EFFECT_OF_INTEREST / (xs[-1] - xs[0])
    assert terms == pytest.approx(0.1)
    assert N >= seeds_needed(SD, slope, terms=terms)



def test_full_mode_runs_valid_configs_of_the_papers_family() -> None:
    from signalprop.experiments.claims.normfree.bn_batchsize import measure
    from tests.experiments.conftest import check_full_mode

    check_full_mode(measure, SIZES["full"])
