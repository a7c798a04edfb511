"""Every Python example in the README and in docs/ runs.

Blocks of one page run in order in one namespace (later examples may use earlier names),
in a temporary directory.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def test_pages_have_examples():
    assert all(_blocks(p) for p in PAGES), [p.name for p in PAGES if not _blocks(p)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(_blocks(page)):
        exec(compile(block, f"{page.name}[python block {i}]", "exec"), namespace)
