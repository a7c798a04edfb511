"""Every ``signalprop ...`` line in the README's shell blocks runs and exits with 0.

Lines are parsed as a shell would (backslash continuations joined, comments dropped) and
run in-process through ``signalprop.cli.main`` in a temporary directory. The other lines
of those blocks are set-up (``make ...``, ``pip ...``), which ``make test`` itself is; any
other command fails the test, so no example goes unchecked.
"""

import re
import shlex
from pathlib import Path

import pytest

from signalprop.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
SETUP = ("make", "pip")


def _shell_lines(text: str) -> list[list[str]]:
    """The commands of every ```sh / ```bash block, as argument lists."""
    commands = []
    for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n", " ", block)
        for line in joined.splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


COMMANDS = _shell_lines(README.read_text())
CLI = [argv for argv in COMMANDS if argv[0] == "signalprop"]


def test_shell_lines_parse():
    lines = _shell_lines("```sh\nsignalprop spp m --out a \\\n    --fix   # note\nmake demo\n```\n")
    assert lines == [["signalprop", "spp", "m", "--out", "a", "--fix"], ["make", "demo"]]


def test_readme_commands_are_cli_or_setup():
    assert len(CLI) >= 3, "the README shows at least three signalprop command lines"
    other = [" ".join(argv) for argv in COMMANDS if argv[0] not in ("signalprop", *SETUP)]
    assert not other, f"README shell lines that no test runs: {other}"
    setup = [argv[:2] for argv in COMMANDS if argv[0] == "make"]
    assert setup[:2] == [["make", "demo"], ["make", "test"]], "make demo and make test first"


@pytest.mark.slow  # the report line alone takes ~8 s on 2 busy cores (mostly its plots)
@pytest.mark.parametrize("argv", CLI, ids=lambda argv: " ".join(argv[1:3]))
def test_readme_cli_line_runs(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv[1:])
    except SystemExit as e:  # argparse rejected the line
        code = e.code
    err = capsys.readouterr().err
    assert code == 0, f"{' '.join(argv)} exited with {code}: {err[-2000:]}"
