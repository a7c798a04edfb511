"""The ``signalprop`` command line: thin wrappers that parse, call the library, print, write.

Each subcommand lives in ``signalprop.cli._<name>`` and provides
``register(subparsers) -> argparse.ArgumentParser`` (which sets ``func`` to the runner).
A runner returns the process exit status. Errors a user can fix are raised as
``CLIError`` and printed as one line, without a traceback, exit status 2; so are usage
errors (``Parser``) and a file the system refuses to read or write (``OSError``).

Conventions every command follows: a model is the positional ``MODEL`` (a preset name or
``module:function``) with ``--model-arg KEY=VALUE``; progress bars switch with
``--progress/--no-progress``; ``--help`` ends with examples.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from signalprop import __version__
from signalprop.cli._common import CLIError, Parser

# Subcommand modules, in the order `signalprop --help` lists them.
_COMMANDS = ["spp", "confusion", "theory", "report", "train", "sweep", "reproduce", "models"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="signalprop",
        description="Measure, predict and fix signal propagation in deep PyTorch networks.",
        epilog="examples:\n"
        "  signalprop spp resnetv2_600 --norm bn,none,nf --input-shape 3,224,224\n"
        "  signalprop report mypkg.models:build_net --input-shape 3,32,32 --fix\n"
        "  signalprop theory tanh --depth 20\n\n"
        "MODEL is a preset ('signalprop models' lists them) or module:function, an "
        "importable\nfactory returning an nn.Module. Run 'signalprop COMMAND --help' for "
        "a command's\noptions and more examples.",
    )
    parser.add_argument("--version", action="version", version=f"signalprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        p = importlib.import_module(f"signalprop.cli._{name}").register(sub)
        p.set_defaults(command_parser=p)  # reports unknown options in the command's name
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signalprop`` console script."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        getattr(args, "command_parser", parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"signalprop {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the system refuses: full disk, no permission, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"signalprop {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"signalprop {args.command}: interrupted", file=sys.stderr)
        return 130
