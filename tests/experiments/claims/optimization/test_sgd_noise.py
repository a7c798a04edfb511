"""sgd-noise: the lr vertex and slope helpers against closed forms; decide() on synthetic
arms -- nulls (lr not growing with B, square-root growth, no fixed-step gap, a gap from
underfitting) fail, the claimed effects at the pilot's spread pass; smoke run."""

import math
from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.optimization.sgd_noise import (
    SIZES,
    best_log2_lrs,
    decide,
    lr_slope,
    lr_window,
    slope_interval,
    vertex,
)

Q = SIZES["quick"]
SEEDS = {"epochs": len(Q["epoch_seeds"]), "steps": len(Q["step_seeds"])}
SD = 0.027  # per-seed s.d. of validation / test accuracy (pilot, pooled)
CURVATURE = 0.025  # accuracy lost per squared lattice step away from the best lr (pilot)


def test_vertex_recovers_a_parabola_and_stays_in_its_window() -> None:
    x = [0.0, 1.0, 2.0, 3.0]
    for peak in (0.4, 1.2, 1.9, 2.8):
        acc = [0.7 - 0.1 * (v - peak) ** 2 for v in x]
        assert vertex(x, acc) == (pytest.approx(peak), False)
    assert vertex(x, [0.7 - 0.1 * (v - 4.0) ** 2 for v in x]) == (3.0, True)  # outside
    assert vertex(x, [0.1, 0.2, 0.3, 0.4]) == (3.0, True)  # rising: no vertex, the top end
    # least squares against numpy's polyfit on a noisy curve
    acc = [0.55, 0.68, 0.66, 0.52]
    c = np.polyfit(x, acc, 2)
    assert vertex(x, acc)[0] == pytest.approx(-c[1] / (2 * c[0]))


def test_slope_of_exact_power_laws() -> None:
    for power in (0.0, 0.5, 1.0):
        assert lr_slope([16, 32, 64], [0.1 * (b / 16) ** power for b in (16, 32, 64)]) == \
            pytest.approx(power)


def _arm(batches: list[int], windows: dict[int, tuple[int, int]], log2_best, test_acc,
         train_loss, rng: np.random.Generator | None, seeds: int) -> dict:
    """Validation accuracy peaked at log2 lr = ``log2_best(b)`` (CURVATURE per squared
    lattice step), per-seed noise SD; test accuracy and loss at the best lr."""
    val, grids = {}, {}
    for b in batches:
        grids[f"B{b}"] = lr_window(*windows[b])
        for lr in grids[f"B{b}"]:
            mu = 0.65 - CURVATURE * (math.log2(lr) - log2_best(b)) ** 2
            noise = rng.normal(0, SD, seeds) if rng else np.zeros(seeds)
            val[f"B{b}/lr{lr:g}"] = {"values": [float(v) for v in mu + noise]}
    best = {f"B{b}": {"lr": 0.1, "values": [float(v) for v in test_acc(b) + (
        rng.normal(0, SD, seeds) if rng else np.linspace(-SD, SD, seeds))]} for b in batches}
    loss = {f"B{b}": {"values": [train_loss(b)] * seeds} for b in batches}
    return {"batch_sizes": batches, "lr_grids": grids, "val_acc": val, "best": best,
            "train_loss_at_best_lr": loss, "diverged": {}}


def _m(power: float = 1.0, gap: float = 0.05, loss_large: float = 0.05,
       rng: np.random.Generator | None = None) -> dict:
    """EPOCHS arm: best lr 0.1 * (B / 16)^power up to B = 64, then flat; STEPS arm: the
    largest batch ``gap`` below the others, with training loss ``loss_large``."""
    def log2_best(b: int) -> float:
        return math.log2(0.1) + power * math.log2(min(b, 64) / 16)

    eb, sb = list(Q["epoch_windows"]), list(Q["step_windows"])
    steps = _arm(sb, Q["step_windows"], log2_best,
                 lambda b: 0.62 - (gap if b == sb[-1] else 0.0),
                 lambda b: loss_large if b == sb[-1] else 0.3, rng, SEEDS["steps"])
    epochs = _arm(eb, Q["epoch_windows"], log2_best, lambda b: 0.6, lambda b: 0.3, rng,
                  SEEDS["epochs"])
    return {"setup": {"epochs": 10, "steps": 500}, "epochs": epochs, "steps": steps}


def test_best_lrs_and_slope_of_a_clean_arm() -> None:
    m = _m()
    best = best_log2_lrs(m["epochs"])
    assert best[16] == (pytest.approx(math.log2(0.1)), False)
    point, lo, hi = slope_interval(m["epochs"], [16, 32, 64], boot=50)
    assert point == pytest.approx(1.0) and lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


def test_claimed_effects_pass_at_the_pilot_spread() -> None:
    passed = [decide(_m(rng=np.random.default_rng(i))).reproduced for i in range(20)]
    assert sum(passed) >= 17
    out = decide(_m())
    assert out.reproduced, out.effect
    assert out.details["slope_large"]["point"] < 0.5  # the lr stops growing past B = 64


@pytest.mark.parametrize(("power", "at_most"), [(0.0, 0), (0.5, 4)])
def test_lr_not_growing_linearly_fails(power: float, at_most: int) -> None:
    # square-root scaling sits on the interval's bound: it passes at about the test's
    # nominal rate (one-sided 2.5%), a constant lr never
    passed = [decide(_m(power=power, rng=np.random.default_rng(i))).details["c_linear"]
              for i in range(40)]
    assert sum(passed) <= at_most


def test_no_fixed_step_gap_fails_and_underfitting_fails() -> None:
    out = decide(_m(gap=0.0, rng=np.random.default_rng(0)))
    assert out.details["a_better_than_largest"] == [] and not out.reproduced
    out = decide(_m(loss_large=1.0))  # the largest batch underfits: (b) fails
    assert out.details["a_better_than_largest"]
    assert not out.details["b_largest_has_lower_train_loss_than_winner"]
    assert not out.reproduced


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("sgd-noise", tmp_path)  # files written, result.json re-decides alike
