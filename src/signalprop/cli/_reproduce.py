"""``signalprop reproduce``: re-check a paper's headline claim and print its verdict."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from signalprop.cli._common import CLIError, add_progress_argument, prepare_out

EXAMPLES = """\
examples:
  signalprop reproduce --list                       # the claims, their criteria, quick minutes
  signalprop reproduce nf-spp                       # one claim, --quick (the default)
  signalprop reproduce criticality-depth --smoke    # seconds: checks the pipeline only
  signalprop reproduce snn-depth --full --workers 2 # closer to the paper, 2 processes
  signalprop reproduce --all --quick --out out/reproduce
  signalprop reproduce --summary out/reproduce      # SUMMARY.md from the results found

each claim writes OUT/<claim>/result.json (every measurement and the verdict) and a figure,
and prints one line: '<claim>: REPRODUCED -- <effect> [criterion: ...]' (or NOT REPRODUCED).
The exit status is 0 whatever the verdict, non-zero when a claim could not run.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "reproduce", help="re-check each paper's headline claim; REPRODUCED or not",
        description="Run a paper's headline claim at CPU scale and decide it with the "
                    "criterion fixed in advance.",
        epilog=EXAMPLES)
    p.add_argument("name", nargs="?", help="the claim to run (see --list)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="tiny: seconds, checks files and the verdict line")
    size.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="minutes on 2 cores, enough seeds to decide (default)")
    size.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="closer to the paper: more seeds, depths, budgets")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the claims and exit")
    what.add_argument("--all", action="store_true", help="run every claim in the mode")
    what.add_argument("--summary", metavar="DIR", type=Path, default=None,
                      help="write DIR/SUMMARY.md from the result.json files under DIR "
                           "(nothing is re-run) and print it")
    p.add_argument("--out", type=Path, default=Path("out/reproduce"),
                   help="results folder; each claim writes into OUT/<claim>")
    p.add_argument("--workers", type=int, default=1,
                   help="local processes for training sweeps")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run training sweeps as Ray tasks on this cluster ('auto')")
    add_progress_argument(p)
    p.set_defaults(func=run, mode="quick")
    return p


def _list() -> int:
    from signalprop.experiments import list_claims

    for c in list_claims():
        print(f"{c.name}  [{c.paper}; quick ~{c.quick_minutes:g} min]")
        for label, text in (("claim", c.statement), ("criterion", c.criterion)):
            print(textwrap.fill(text, width=96, initial_indent=f"    {label}: ",
                                subsequent_indent="      "))
    return 0


def run(args: argparse.Namespace) -> int:
    from signalprop.experiments import get_claim, list_claims, run_claim, write_summary

    if args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    if args.ray is not None and args.workers != 1:
        raise CLIError("--ray and --workers exclude each other: Ray decides the parallelism")
    if args.list:
        return _list()
    if args.summary is not None:
        try:
            path = write_summary(args.summary)
        except ValueError as e:
            raise CLIError(str(e)) from None
        print(path.read_text(), end="")
        print(f"wrote {path}")
        return 0
    if args.all:
        if args.name:
            raise CLIError("give a claim name or --all, not both")
        names = [c.name for c in list_claims()]
    elif args.name:
        try:
            names = [get_claim(args.name).name]
        except ValueError as e:
            raise CLIError(str(e)) from None
    else:
        raise CLIError("name a claim (see 'signalprop reproduce --list'), or pass --all, "
                       "--list or --summary DIR")
    prepare_out(args.out)
    lines, failed = [], []
    for name in names:
        try:
            result = run_claim(name, args.mode, args.out, workers=args.workers,
                               ray_address=args.ray, progress=args.progress,
                               log=lambda m: print(m, flush=True))
        except Exception as e:  # noqa: BLE001 -- one broken claim must not stop --all
            if len(names) == 1:
                raise
            failed.append(name)
            lines.append(f"{name}: ERROR -- {type(e).__name__}: {e}")
            print(lines[-1], flush=True)
            continue
        lines.append(result.verdict_line())
    if len(names) > 1:
        print("\nverdicts:")
        print("\n".join(lines))
    if failed:
        raise CLIError(f"{len(failed)} claim(s) could not run: {', '.join(failed)}")
    return 0
