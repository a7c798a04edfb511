"""Smoke runs of the training claims: files written, a verdict line printed; the verdict
itself is not asserted (at smoke size it means nothing)."""

from pathlib import Path

import pytest

from signalprop.experiments import ClaimResult, run_claim

CLAIMS = ["criticality-depth", "snn-depth", "confusion-width-depth", "adam-nag"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CLAIMS)
def test_smoke_end_to_end(name: str, tmp_path: Path) -> None:
    lines: list[str] = []
    res = run_claim(name, "smoke", tmp_path, progress=False, log=lines.append)
    folder = tmp_path / name
    assert (folder / "figure.png").stat().st_size > 0
    back = ClaimResult.from_json(folder / "result.json")
    assert back.claim == name and back.mode == "smoke" and back.reproduced == res.reproduced
    verdict = "REPRODUCED" if res.reproduced else "NOT REPRODUCED"
    assert lines[-1].startswith(f"{name}: {verdict} -- ")
    assert "[criterion: " in lines[-1]
