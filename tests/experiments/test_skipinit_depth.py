"""skipinit-depth: the smoke run writes its files and prints a verdict line (verdict not
asserted); every (depth, norm) cell is measured."""

from pathlib import Path

from signalprop.experiments.claims.skipinit_depth import NORMS, SIZES


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("skipinit-depth", tmp_path)
    cells = {f"{n}/depth{d}" for d in SIZES["smoke"]["depths"] for n in NORMS}
    assert set(res.measurements["test_acc"]) == cells
    for cell in cells:
        values = res.measurements["test_acc"][cell]["values"]
        assert len(values) == len(SIZES["smoke"]["seeds"])
        assert all(0.0 <= v <= 1.0 for v in values)
