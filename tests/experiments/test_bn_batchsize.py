"""bn-batchsize: the smoke run writes its files and prints a verdict line (verdict not
asserted); the best learning rate per (norm, batch) is the grid's best mean validation
accuracy; the lr grid scales with the batch size."""

from pathlib import Path

import pytest

from signalprop.experiments.claims.bn_batchsize import NORMS, SIZES, lr_grid


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("bn-batchsize", tmp_path)
    m = res.measurements
    size = SIZES["smoke"]
    for norm in NORMS:
        for b in size["batches"]:
            # brute force: the lr whose mean accuracy is highest (first on ties)
            lrs = lr_grid(size["lrs"], b)
            assert m["setup"]["lr_grids"][f"B{b}"] == lrs
            means = {lr: m["val_acc"][f"{norm}/B{b}/lr{lr:g}"]["mean"] for lr in lrs}
            top = max(means.values())
            expected = min(lr for lr, v in means.items() if v == top)
            assert m["best"][f"{norm}/B{b}"]["lr"] == expected
        gap = m["bn_minus"]["nf"][f"B{b}"]["gap"]
        assert abs(gap - (m["best"][f"bn/B{b}"]["mean"] - m["best"][f"nf/B{b}"]["mean"])) < 1e-12


def test_lr_grid_scales_linearly_with_batch() -> None:
    for b in (16, 32, 256, 48):
        got = lr_grid([0.01, 0.03, 0.16], b)
        assert got == pytest.approx([lr * b / 16 for lr in (0.01, 0.03, 0.16)], rel=1e-9)
    assert lr_grid([0.01], 16) == [0.01]
