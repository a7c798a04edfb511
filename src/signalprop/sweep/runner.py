"""Running a sweep: decide what is left, run it here, on local processes or on Ray.

    out/sweep.sqlite        one row per run (signalprop.sweep.db)
    out/sweep.lock          held by the driver while it runs (one driver per sweep)
    out/runs/<run_id>/      metrics.jsonl, checkpoint.pt, result.json of each run

Re-running a sweep skips runs whose status is final (completed, diverged), imports runs
that finished after the database was last written (from their result.json), and resumes
every other run from its last checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signalprop.sweep._identity import META_KEY, check_same_sweep, stored_form
from signalprop.sweep.db import DB_NAME, FINAL, SweepDB, SweepDBError
from signalprop.sweep.spec import RunSpec, SweepSpec

LOCK_NAME = "sweep.lock"


@dataclass
class SweepSummary:
    """What a sweep invocation did; ``counts`` is the database's status count afterwards.

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear",
        ...     "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris",
        ...     "steps": 2, "batch_size": 16}}, default_out=Path("sweep"))
        >>> run_sweep(spec, progress=False, log=lambda line: None)
        SweepSummary(total=1, skipped=0, recovered=0, ran=1, counts={'pending': 0,
        'running': 0, 'completed': 1, 'diverged': 0, 'failed': 0})
        >>> run_sweep(spec, progress=False, log=lambda line: None).skipped  # already done
        1
    """

    total: int
    skipped: int
    recovered: int
    ran: int
    counts: dict[str, int]


@contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold ``out/sweep.lock`` exclusively, or raise ``SweepDBError`` naming the holder."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_NAME, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise SweepDBError(f"another sweep driver ({holder}) is running the sweep in {out}; "
                               "wait for it or stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(f"{socket.gethostname()}:{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def driver_active(out: Path) -> bool:
    """True while a sweep driver holds ``out/sweep.lock``.

    Examples:
        >>> driver_active(Path("sweep"))
        False
        >>> with sweep_lock(Path("sweep")):  # what run_sweep holds while it runs
        ...     driver_active(Path("sweep"))
        True
    """
    path = out / LOCK_NAME
    if not path.exists():
        return False
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def _finished_result(run: RunSpec, run_dir: Path) -> dict[str, Any] | None:
    """The run's own result.json when it records a final status for this exact config."""
    path = run_dir / "result.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("run_key") == run.run_id and data.get("status") in FINAL:
        return data
    return None


def check_runs(runs: list[RunSpec]) -> None:
    """:func:`signalprop.train.check_run` once per distinct model and dataset of ``runs``.

    Raises:
        ValueError: the first run that cannot start, by its label, and why.

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear", "model_args":
        ...     {"in_features": 4, "out_features": 3}, "dataset": "iris", "steps": 1,
        ...     "batch_size": 16}, "grid": {"model_args.in_features": [4, 5]}})
        >>> check_runs(spec.runs())
        Traceback (most recent call last):
        ...
        ValueError: run model_args.in_features=5 seed=0: model torch.nn:Linear does not take ...
    """
    from signalprop.data import DatasetNotFoundError
    from signalprop.train import check_run

    seen = set()
    for run in runs:
        c = run.config
        key = json.dumps([c.model, c.model_args, c.dataset, c.dataset_args, c.batch_size],
                         sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            check_run(c)
        except (ValueError, DatasetNotFoundError, ImportError) as e:
            raise type(e)(f"run {run.label}: {e}") from e


def check_devices(runs: list[RunSpec]) -> None:
    """Each distinct ``device`` of ``runs`` exists on this machine (cheap: no model built).

    Raises:
        ValueError: the first run whose device is missing (e.g. ``cuda`` without a GPU),
            by its label, naming what is available.

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear",
        ...     "dataset": "iris", "steps": 1, "device": "auto"}})
        >>> check_devices(spec.runs())  # 'auto' exists everywhere
    """
    from signalprop.train import resolve_device

    seen = set()
    for run in runs:
        if run.config.device not in seen:
            seen.add(run.config.device)
            try:
                resolve_device(run.config.device)
            except ValueError as e:
                raise ValueError(f"run {run.label}: {e}") from None


def run_sweep(spec: SweepSpec, workers: int = 1, ray_address: str | None = None,
              progress: bool = True, log: Callable[[str], None] = print,
              check: bool | None = None) -> SweepSummary:
    """Run every unfinished run of ``spec``; results go to ``spec.out/sweep.sqlite``.

    Args:
        spec: the sweep.
        workers: local processes running runs in parallel (1: in this process). They are
            started with multiprocessing's "spawn", which re-imports the calling script:
            a script that calls ``run_sweep(workers=2)`` needs the usual
            ``if __name__ == "__main__":`` guard (the CLI has it).
        ray_address: run as Ray tasks on this cluster instead ("auto", "host:port", ...).
        progress: a progress bar over runs.
        log: where one-line messages go.
        check: before any run starts, build each distinct model of the unfinished runs and
            pass two examples of its dataset through it (:func:`check_runs`), so that a
            mistake stops the sweep in one line instead of failing every run. None: check
            when the runs are local (not on Ray, whose workers may see other files).
            Local runs' devices are always checked first (:func:`check_devices`), before
            any file is written.

    With ``workers > 1``, runs on ``cuda`` (or ``auto`` where there is a GPU) are spread
    over the GPUs round-robin, one GPU per worker process (``signalprop.sweep._exec``); on
    Ray each such run asks Ray for one GPU, and Ray chooses which.

    Returns:
        :class:`SweepSummary`.

    Raises:
        SweepDBError: another driver runs this sweep, or the database is locked/corrupt.
        ValueError: ``spec.out`` holds a different sweep (other fixed settings or grid
            keys: its rows would mix with these under the same labels; adding grid values
            or seeds is fine), or a run cannot start (``check``).

    Examples:
        >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear",
        ...     "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris",
        ...     "steps": 5, "batch_size": 16}, "grid": {"lr": [0.1, 0.01]}},
        ...     default_out=Path("sweep"))
        >>> run_sweep(spec, progress=False).counts["completed"]
        sweep sweep: 2 runs, 0 already finished, 0 recovered from result.json, 2 to run -> ...
        2
    """
    from tqdm.auto import tqdm

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    runs = spec.runs()
    if ray_address is None:
        check_devices(runs)  # before the lock and the database are created
    out = spec.out.resolve()  # rows store absolute history paths
    with sweep_lock(out), SweepDB(out / DB_NAME) as db:
        _admit(db, spec, runs, check if check is not None else ray_address is None)
        todo, skipped, recovered = _plan(db, runs, out)
        log(f"sweep {spec.name}: {len(runs)} runs, {skipped} already finished, "
            f"{recovered} recovered from result.json, {len(todo)} to run -> {out / DB_NAME}")
        jobs = [(r.run_id, r.config.to_dict(), str(out / "runs" / r.run_id)) for r in todo]
        by_id = {r.run_id: r for r in todo}
        if ray_address is not None:
            from signalprop.sweep._ray import run_ray

            events = run_ray(jobs, ray_address)
        elif workers > 1:
            from signalprop.sweep._exec import run_local

            events = run_local(jobs, workers)
        else:
            events = _run_here(jobs)
        bar = tqdm(total=len(jobs), disable=not progress, desc=f"sweep {spec.name}",
                   unit="run", dynamic_ncols=True)
        try:
            for kind, run_id, payload in events:
                if kind == "start":
                    db.mark_started(run_id, payload)
                    continue
                db.record_result(run_id, payload)
                bar.update(1)
                status = payload["status"]
                if status != "completed":
                    detail = payload.get("error") or payload.get("message") or ""
                    log(f"  {by_id[run_id].label}: {status} {detail}".rstrip())
        finally:
            bar.close()
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return SweepSummary(len(runs), skipped, recovered, len(jobs), db.counts())


def _admit(db: SweepDB, spec: SweepSpec, runs: list[RunSpec], check: bool) -> None:
    """Refuse a spec foreign to ``db`` (or, with ``check``, one whose unfinished runs
    cannot start); then record the spec and add its new runs as pending."""
    rows = {row["run_id"]: row for row in db.rows()}
    check_same_sweep(db.meta(META_KEY), spec, list(rows.values()), spec.out)
    if check:
        check_runs([r for r in runs if rows.get(r.run_id, {}).get("status") not in FINAL])
    db.set_meta(META_KEY, stored_form(spec))
    out = spec.out.resolve()
    db.add_runs([(r.run_id, r.label, json.dumps(r.config.to_dict()), r.config.seed,
                  str(out / "runs" / r.run_id / "metrics.jsonl")) for r in runs])


def _plan(db: SweepDB, runs: list[RunSpec], out: Path) -> tuple[list[RunSpec], int, int]:
    """(runs to run, how many are final already, how many were recovered from their
    result.json) -- recovered runs are recorded in ``db`` on the way."""
    rows = {row["run_id"]: row for row in db.rows()}
    todo, skipped, recovered = [], 0, 0
    for r in runs:
        if rows[r.run_id]["status"] in FINAL:
            skipped += 1
            continue
        found = _finished_result(r, out / "runs" / r.run_id)
        if found is not None:
            db.record_result(r.run_id, found)
            recovered += 1
            continue
        todo.append(r)
    return todo, skipped, recovered


def _run_here(jobs: list[tuple[str, dict[str, Any], str]]) -> Iterator[tuple[str, str, Any]]:
    from signalprop.sweep._exec import run_one

    for run_id, config, out in jobs:
        yield "start", run_id, f"{socket.gethostname()}:{os.getpid()}"
        yield "done", run_id, run_one(config, out, threads=_current_threads())


def _current_threads() -> int:
    import torch

    return torch.get_num_threads()
