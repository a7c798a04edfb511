"""``signalprop sweep``: run a grid of training runs, locally or on Ray; show its status."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from signalprop.cli._common import CLIError, add_progress_argument, prepare_out

EXAMPLES = """\
examples:
  signalprop sweep lr.yaml                  # runs one after another in this process
  signalprop sweep lr.yaml --workers 2      # two local processes (one torch thread each)
  signalprop sweep lr.yaml --ray auto       # Ray tasks on the running cluster
  signalprop sweep lr.yaml --status         # progress table, from the database

a spec (YAML):
  base:                       # any 'signalprop train' config keys
    model: resnetv2_50
    model_args: {name_or_depths: [1, 1], stem: cifar, norm: nf, width: 0.125,
                 num_classes: 10, in_chans: 1}
    dataset: digits
    dataset_args: {as_image: true}
    epochs: 3
  grid:                       # every combination
    lr: [0.3, 0.1, 0.03]
    batch_size: [32, 128]
  seeds: 2                    # or a list, e.g. [0, 1]

results: OUT/sweep.sqlite (one row per run), OUT/runs/<id>/ (metrics.jsonl, checkpoint,
result.json); OUT defaults to the spec's folder/name. Rerunning skips finished runs and
resumes interrupted ones; adding grid values or seeds to the spec extends the sweep, while
a spec with other fixed settings is refused (its rows would mix with the old ones).
Before anything runs, each distinct model is built and given two examples of its data.
Runs with device cuda (or auto, on a machine with GPUs) and --workers N share the GPUs
round-robin, one GPU per worker process.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sweep", help="run a grid of training runs (SQLite results, resumable, Ray)",
        description="Run every (grid point, seed) of a sweep spec that has not finished.",
        epilog=EXAMPLES)
    p.add_argument("spec", type=Path, help="sweep spec, YAML or JSON")
    p.add_argument("--workers", type=int, default=1,
                   help="local processes running runs in parallel")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run as Ray tasks on the cluster at ADDRESS ('auto': the running one)")
    p.add_argument("--status", action="store_true", help="print the progress table and exit")
    p.add_argument("--out", type=Path, default=None, help="override the spec's output folder")
    add_progress_argument(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from signalprop.data import DatasetNotFoundError
    from signalprop.sweep import SweepDBError, SweepSpec, run_sweep, sweep_status
    from signalprop.sweep.runner import check_devices

    if args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    if args.ray is not None and args.workers != 1:
        raise CLIError("--ray and --workers exclude each other: Ray decides the parallelism")
    try:
        spec = SweepSpec.from_file(args.spec)
    except (ValueError, ImportError) as e:
        raise CLIError(str(e)) from None
    if args.out is not None:
        spec.out = args.out
    try:
        if args.status:
            print(sweep_status(spec.out))
            return 0
        if args.ray is None:
            check_devices(spec.runs())  # a missing GPU is one line, before any file
        prepare_out(Path(spec.out))
        summary = run_sweep(spec, workers=args.workers, ray_address=args.ray,
                            progress=args.progress)
    except (SweepDBError, ValueError, DatasetNotFoundError, ImportError) as e:
        raise CLIError(str(e)) from None
    counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items() if n)
    print(f"ran {summary.ran} runs ({summary.skipped} skipped as finished, "
          f"{summary.recovered} recovered); database now: {counts}")
    print(sweep_status(spec.out))
    return 1 if summary.counts.get("failed") else 0
