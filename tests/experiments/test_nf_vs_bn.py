"""nf-vs-bn: the smoke run writes its files and prints a verdict line (verdict not
asserted); the gaps are the differences of the per-norm means; each batch size's lr is
its own grid's best mean validation accuracy."""

from pathlib import Path

from signalprop.experiments.claims.nf_vs_bn import SIZES


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("nf-vs-bn", tmp_path)
    m = res.measurements
    for b in SIZES["smoke"]["batches"]:
        expected = m["best"][f"nf/B{b}"]["mean"] - m["best"][f"bn/B{b}"]["mean"]
        assert abs(m["nf_minus_bn"][f"B{b}"]["gap"] - expected) < 1e-12
    assert set(m["nf_much_better_at"]) == {"B4"}
    size = SIZES["smoke"]
    for b in size["batches"]:
        assert m["setup"]["lr_grids"][f"B{b}"] == size["lrs"][b]
        for norm in ("bn", "nf"):
            means = {lr: m["val_acc"][f"{norm}/B{b}/lr{lr:g}"]["mean"] for lr in size["lrs"][b]}
            top = max(means.values())
            assert m["best"][f"{norm}/B{b}"]["lr"] == min(lr for lr, v in means.items() if v == top)
            assert len(m["train_loss_at_best_lr"][f"{norm}/B{b}"]["values"]) == len(size["seeds"])


def test_every_batch_size_has_epochs_and_an_lr_grid() -> None:
    for size in SIZES.values():
        assert set(size["lrs"]) == set(size["epochs"]) == set(size["batches"])
        assert all(lrs == sorted(lrs) for lrs in size["lrs"].values())
