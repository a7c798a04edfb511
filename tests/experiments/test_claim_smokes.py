"""Smoke runs of the training claims: files written, a verdict line printed; the verdict
itself is not asserted (at smoke size it means nothing)."""

from pathlib import Path

import pytest

CLAIMS = ["criticality-depth", "snn-depth", "confusion-width-depth", "adam-nag"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CLAIMS)
def test_smoke_end_to_end(name: str, tmp_path: Path, smoke_run) -> None:
    smoke_run(name, tmp_path)  # files written, result.json reads back, one verdict line
