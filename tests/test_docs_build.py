"""The documentation site builds offline with no warnings (mkdocs --strict)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (tmp_path / "api" / "measure" / "index.html").read_text()
    assert "channel_moments" in api and "spp" in api
    assert (tmp_path / "index.html").exists()
