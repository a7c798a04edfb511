"""skipinit-depth: the smoke run writes its files and prints a verdict line (verdict not
asserted); every (depth, norm) cell is measured."""

import json
from pathlib import Path

from signalprop.experiments import run_claim
from signalprop.experiments.claims.skipinit_depth import NORMS, SIZES


def test_smoke_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    res = run_claim("skipinit-depth", "smoke", tmp_path, progress=False, log=lines.append)
    folder = tmp_path / "skipinit-depth"
    assert (folder / "figure.png").stat().st_size > 0
    saved = json.loads((folder / "result.json").read_text())
    assert saved["reproduced"] == res.reproduced
    assert lines[-1].startswith("skipinit-depth: ") and "REPRODUCED -- " in lines[-1]
    cells = {f"{n}/depth{d}" for d in SIZES["smoke"]["depths"] for n in NORMS}
    assert set(res.measurements["test_acc"]) == cells
    for cell in cells:
        values = res.measurements["test_acc"][cell]["values"]
        assert len(values) == len(SIZES["smoke"]["seeds"])
        assert all(0.0 <= v <= 1.0 for v in values)
