"""The ``signalprop`` command line: thin wrappers that parse, call the library, print, write.

Each subcommand lives in ``signalprop.cli._<name>`` and provides
``register(subparsers) -> argparse.ArgumentParser`` (which sets ``func`` to the runner).
A runner returns the process exit status. Errors a user can fix are raised as
``CLIError`` and printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from signalprop import __version__
from signalprop.cli._common import CLIError

# Subcommand modules, in the order `signalprop --help` lists them.
_COMMANDS = ["spp", "confusion", "theory", "report", "train", "sweep", "reproduce", "models"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signalprop",
        description="Measure, predict and fix signal propagation in deep PyTorch networks.",
        epilog="Run 'signalprop COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"signalprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"signalprop.cli._{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signalprop`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"signalprop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"signalprop {args.command}: interrupted", file=sys.stderr)
        return 130
