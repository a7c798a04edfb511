"""bn-batchsize: the smoke run writes its files and prints a verdict line (verdict not
asserted); the best learning rate per (norm, batch) is the grid's best mean validation
accuracy; the lr grid scales with the batch size; decide on hand-made accuracies."""

from pathlib import Path

import pytest

from signalprop.experiments.claims.normfree.bn_batchsize import NORMS, SIZES, decide, lr_grid


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
        gap = m["decision"]["bn_minus"]["nf"][f"B{b}"]["gap"]
        assert abs(gap - (m["best"][f"bn/B{b}"]["mean"] - m["best"][f"nf/B{b}"]["mean"])) < 1e-12


def test_lr_grid_scales_linearly_with_batch() -> None:
    for b in (16, 32, 256, 48):
        got = lr_grid([0.01, 0.03, 0.16], b)
        assert got == pytest.approx([lr * b / 16 for lr in (0.01, 0.03, 0.16)], rel=1e-9)
    assert lr_grid([0.01], 16) == [0.01]


def _measurements(acc: dict[str, list[float]]) -> dict:
    return {"setup": {"batch_sizes": [16, 256]},
            "best": {key: {"lr": 0.04, "values": v} for key, v in acc.items()}}


def test_decide_passes_a_large_batch_gap_and_fails_the_null() -> None:
    small = {"bn/B16": [0.960, 0.955, 0.965], "skipinit/B16": [0.950, 0.945, 0.948],
             "nf/B16": [0.958, 0.962, 0.957]}
    out = decide(_measurements({**small, "bn/B256": [0.85, 0.82, 0.87],
                                "skipinit/B256": [0.52, 0.60, 0.47],
                                "nf/B256": [0.70, 0.68, 0.71]}))
    assert out.reproduced, out.effect
    # by hand: means 0.8467 - 0.53; s.e. sqrt(0.01453^2 + 0.03786^2) = 0.0406
    assert out.details["bn_minus"]["skipinit"]["B256"]["gap"] == pytest.approx(0.3167, abs=1e-4)
    assert out.effect.startswith("BN - SkipInit acc at B=256: 0.317 +- 0.041, at B=16: 0.012")
    # the null: BN and SkipInit equal up to seed noise at the large batch
    out = decide(_measurements({**small, "bn/B256": [0.85, 0.82, 0.87],
                                "skipinit/B256": [0.84, 0.86, 0.83],
                                "nf/B256": [0.70, 0.68, 0.71]}))
    assert not out.reproduced
    # a gap at the small batch as large as at the large one fails the "only" part
    out = decide(_measurements({**small, "skipinit/B16": [0.90, 0.91, 0.89],
                                "bn/B256": [0.85, 0.82, 0.87],
                                "skipinit/B256": [0.52, 0.60, 0.47],
                                "nf/B256": [0.70, 0.68, 0.71]}))
    assert not out.reproduced
