"""Every `signalprop ...` line in the guides' shell blocks and the Makefile parses with
today's command line (the lines are not run: they name files and models of the reader's)."""

import re
import shlex
from pathlib import Path

import pytest

from signalprop.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"```(?:sh|bash|console|shell)\n(.*?)```", re.S)


def _command_lines(text):
    """Logical lines (continuations joined, comments dropped) that run signalprop."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        for part in re.split(r";|&&|\|\|", line.split(" #")[0]):
            part = part.replace("$(BIN)/", "").strip()
            if part.startswith("signalprop ") or " -m signalprop " in part:
                yield part.split("signalprop ", 1)[1].replace("$(OUT)", "out")


def _lines():
    found = []
    for path in sorted((ROOT / "docs").glob("*.md")):
        for block in FENCE.findall(path.read_text()):
            found += [(path.name, line) for line in _command_lines(block)]
    make = (ROOT / "Makefile").read_text()
    found += [("Makefile", line) for line in _command_lines(make.replace("\t", ""))]
    return found


def test_the_guides_show_command_lines():
    assert {name for name, _ in _lines()} >= {"index.md", "train.md", "report.md", "Makefile"}


@pytest.mark.parametrize("where,line", _lines())
def test_command_line_parses(where, line):
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(shlex.split(line))
    except SystemExit:
        pytest.fail(f"{where}: 'signalprop {line}' does not parse")
    assert not unknown, f"{where}: 'signalprop {line}': unknown {unknown}"
