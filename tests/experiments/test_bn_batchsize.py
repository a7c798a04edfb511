"""bn-batchsize: the smoke run writes its files and prints a verdict line (verdict not
asserted); the best learning rate per (norm, batch) is the grid's best mean."""

from pathlib import Path

from signalprop.experiments import run_claim
from signalprop.experiments.claims.bn_batchsize import NORMS, SIZES


def test_smoke_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    res = run_claim("bn-batchsize", "smoke", tmp_path, progress=False, log=lines.append)
    assert (tmp_path / "bn-batchsize" / "figure.png").stat().st_size > 0
    assert (tmp_path / "bn-batchsize" / "result.json").is_file()
    assert lines[-1].startswith("bn-batchsize: ") and "REPRODUCED -- " in lines[-1]
    m = res.measurements
    size = SIZES["smoke"]
    for norm in NORMS:
        for b in size["batches"]:
            # brute force: the lr whose mean accuracy is highest (first on ties)
            means = {lr: m["test_acc"][f"{norm}/B{b}/lr{lr}"]["mean"] for lr in size["lrs"]}
            top = max(means.values())
            expected = min(lr for lr, v in means.items() if v == top)
            assert m["best"][f"{norm}/B{b}"]["lr"] == expected
        gap = m["bn_minus"]["nf"][f"B{b}"]["gap"]
        assert abs(gap - (m["best"][f"bn/B{b}"]["mean"] - m["best"][f"nf/B{b}"]["mean"])) < 1e-12
