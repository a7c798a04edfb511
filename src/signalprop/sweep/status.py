"""A sweep's progress as a table, read from its database (without taking the lock)."""

from __future__ import annotations

import math
from pathlib import Path

from signalprop.sweep.db import DB_NAME, STATUSES, SweepDB
from signalprop.sweep.runner import driver_active


def _num(v: float | None, fmt: str) -> str:
    if v is None:
        return "-"
    return format(v, fmt) if math.isfinite(v) else str(v)


def sweep_status(out: str | Path) -> str:
    """The status table of the sweep whose output directory is ``out``.

    One line per run (label, status, steps, final test accuracy and loss, seconds) and a
    count per status. A row left "running" while no driver holds the sweep lock is shown
    as "interrupted": rerunning the sweep resumes it from its checkpoint.

    Raises:
        SweepDBError: no database yet, or it is locked/corrupt.

    Examples:
        >>> Path("sweep").mkdir()
        >>> with SweepDB("sweep/sweep.sqlite") as db:  # what run_sweep writes first
        ...     db.add_runs([("run0", "lr=0.1 seed=0", "{}", 0, "runs/run0/metrics.jsonl")])
        1
        >>> print(sweep_status("sweep"))
        run            status              step  test_acc  test_loss   seconds
        lr=0.1 seed=0  pending                -         -          -         -
        1 runs: 1 pending (no driver running; database sweep/sweep.sqlite)
    """
    out = Path(out)
    with SweepDB(out / DB_NAME, create=False) as db:
        rows = db.rows()
        counts = db.counts()
    live = driver_active(out)
    width = max([len("run"), *(len(r["label"]) for r in rows)])
    lines = [f"{'run':<{width}}  {'status':<11}  {'step':>11}  {'test_acc':>8}  "
             f"{'test_loss':>9}  {'seconds':>8}"]
    for r in rows:
        status = r["status"]
        if status == "running" and not live:
            status = "interrupted"
        step = f"{r['step'] or 0}/{r['total_steps']}" if r["total_steps"] else "-"
        lines.append(f"{r['label']:<{width}}  {status:<11}  {step:>11}  "
                     f"{_num(r['test_acc'], '.4f'):>8}  {_num(r['test_loss'], '.4g'):>9}  "
                     f"{_num(r['seconds'], '.1f'):>8}")
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    state = "a driver is running it" if live else "no driver running"
    lines.append(f"{len(rows)} runs: {summary or 'none'} ({state}; database {out / DB_NAME})")
    return "\n".join(lines)
