"""nf-vs-bn: the smoke run writes its files and prints a verdict line (verdict not
asserted); the gaps are the differences of the per-norm means; each batch size's lr is
its own grid's best mean validation accuracy; decide on hand-made accuracies."""

from pathlib import Path

from signalprop.experiments.claims.normfree.nf_vs_bn import SIZES, decide


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("nf-vs-bn", tmp_path)
    m = res.measurements
    for b in SIZES["smoke"]["batches"]:
        expected = m["best"][f"nf/B{b}"]["mean"] - m["best"][f"bn/B{b}"]["mean"]
        assert abs(m["decision"]["nf_minus_bn"][f"B{b}"]["gap"] - expected) < 1e-12
    assert set(m["decision"]["nf_much_better_at"]) == {"B4"}
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


def _measurements(acc: dict[str, list[float]]) -> dict:
    return {"setup": {"batch_sizes": [2, 4, 64]},
            "best": {key: {"lr": 0.01, "values": v} for key, v in acc.items()}}


def test_decide_passes_nf_ahead_at_tiny_batches_and_fails_the_null() -> None:
    moderate = {"bn/B64": [0.968, 0.966, 0.970], "nf/B64": [0.959, 0.962, 0.956]}
    out = decide(_measurements({**moderate, "bn/B2": [0.70, 0.75, 0.66],
                                "nf/B2": [0.95, 0.94, 0.96], "bn/B4": [0.86, 0.83, 0.88],
                                "nf/B4": [0.957, 0.960, 0.955]}))
    assert out.reproduced, out.effect
    assert out.details["nf_much_better_at"] == {"B2": True, "B4": True}
    assert out.details["comparable_at_moderate"]
    # the null (as measured at quick size): BN does not break down at B = 4
    out = decide(_measurements({**moderate, "bn/B2": [0.70, 0.75, 0.66],
                                "nf/B2": [0.95, 0.94, 0.96], "bn/B4": [0.961, 0.955, 0.967],
                                "nf/B4": [0.958, 0.952, 0.964]}))
    assert not out.reproduced
    assert out.details["nf_much_better_at"] == {"B2": True, "B4": False}
