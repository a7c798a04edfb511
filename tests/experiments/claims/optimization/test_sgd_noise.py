"""sgd-noise: the smoke run writes its files and prints a verdict line (verdict not
asserted); the training loss read back from a checkpoint matches a direct forward pass;
the lr-scaling slope matches a closed form; every lr tried lies on one lattice; decide on
hand-made accuracies, losses and learning rates."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from signalprop.data import load_dataset
from signalprop.experiments import RunContext
from signalprop.experiments._resnet_runs import digits_resnet
from signalprop.experiments.claims.optimization.sgd_noise import (
    LATTICE,
    SIZES,
    decide,
    lr_slope,
    lr_window,
    train_loss,
)
from signalprop.train import TrainConfig, fit


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("sgd-noise", tmp_path)
    m = res.measurements
    best = m["best"]
    assert set(best) == set(m["train_loss_at_best_lr"]) == {"B8", "B32", "B128"}
    for cell in m["train_loss_at_best_lr"].values():
        assert all(v > 0 for v in cell["values"])
    for b, (lo, hi) in SIZES["smoke"]["lr_windows"].items():
        lrs = lr_window(lo, hi)
        assert m["setup"]["lr_grids"][f"B{b}"] == lrs
        # brute force: the lr with the best mean validation accuracy (first on ties)
        means = {lr: m["val_acc"][f"B{b}/lr{lr:g}"]["mean"] for lr in lrs}
        top = max(means.values())
        assert best[f"B{b}"]["lr"] == min(lr for lr, v in means.items() if v == top)


@pytest.mark.parametrize("mode", list(SIZES))
def test_lr_windows_lie_on_one_lattice(mode: str) -> None:
    for lo, hi in SIZES[mode]["lr_windows"].values():
        lrs = lr_window(lo, hi)
        assert len(lrs) == hi - lo + 1
        ks = np.log2(np.array(lrs) / LATTICE)
        np.testing.assert_allclose(ks, np.arange(lo, hi + 1), atol=1e-12)


def test_train_loss_matches_a_direct_forward_pass(tmp_path: Path) -> None:
    base = {**digits_resnet([1], "bn"), "lr": 0.1, "batch_size": 32, "steps": 5}
    [run] = RunContext("smoke", tmp_path, progress=False, log=lambda s: None).sweep(
        "one", base, {"lr": [0.1]}, [0])
    cfg = TrainConfig.from_dict(run["config"])
    model = fit(cfg, progress=False).model.eval()  # the same seed gives the same weights
    data = load_dataset("digits", as_image=True).train
    with torch.no_grad():
        expected = float(F.cross_entropy(model(data.x), data.y))
    assert train_loss(run) == pytest.approx(expected, rel=1e-5)
    assert train_loss({**run, "result": {**run["result"], "status": "diverged"}}) == math.inf


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_lr_slope_recovers_a_power_law(power: float) -> None:
    batches = [4, 8, 16, 32]
    lrs = [0.01 * (b / 4) ** power for b in batches]
    assert lr_slope(batches, lrs) == pytest.approx(power, abs=1e-9)
    assert math.isnan(lr_slope([8], [0.1]))
    noisy = [lr * f for lr, f in zip(lrs, (1.0, 1.1, 0.9, 1.0))]
    assert lr_slope(batches, noisy) == pytest.approx(
        np.polyfit(np.log(batches), np.log(noisy), 1)[0], abs=1e-12)


def _measurements(best: dict[int, tuple[float, list[float], list[float]]]) -> dict:
    """``best``: batch size -> (best lr, per-seed test accuracy, per-seed training loss)."""
    return {"setup": {"batch_sizes": list(best)},
            "best": {f"B{b}": {"lr": lr, "values": acc} for b, (lr, acc, _) in best.items()},
            "train_loss_at_best_lr": {f"B{b}": {"values": loss}
                                      for b, (_, _, loss) in best.items()}}


def test_decide_passes_the_claimed_effect_and_fails_the_null() -> None:
    effect = {8: (0.1, [0.960, 0.965, 0.958], [0.020, 0.024, 0.019]),
              16: (0.2, [0.968, 0.966, 0.971], [0.015, 0.014, 0.016]),
              32: (0.4, [0.970, 0.967, 0.972], [0.011, 0.012, 0.010]),
              512: (0.8, [0.951, 0.948, 0.955], [0.005, 0.008, 0.004])}
    out = decide(_measurements(effect))
    assert out.reproduced, out.effect
    assert out.details["a_better_than_largest"] == [8, 16, 32]
    assert out.details["c_lr_slope_small_batches"] == pytest.approx(1.0, abs=1e-12)
    assert out.effect.startswith("test acc B=32 0.970 +- 0.001 vs B=512 0.951 +- 0.002")
    # the null: the largest batch as accurate as the others (part (a) fails)
    null = {**effect, 512: (0.8, [0.968, 0.971, 0.966], [0.005, 0.008, 0.004])}
    out = decide(_measurements(null))
    assert not out.reproduced and out.details["a_better_than_largest"] == []
    assert "(a) no, (b) n/a, (c) yes" in out.effect
    # the best lr does not grow with the batch (part (c) fails, as at quick size)
    flat = {b: (0.2, acc, loss) for b, (_, acc, loss) in effect.items()}
    out = decide(_measurements(flat))
    assert not out.reproduced and "(a) yes, (b) yes, (c) no" in out.effect
