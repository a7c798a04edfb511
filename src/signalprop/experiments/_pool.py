"""Running a claim's own training jobs (the ones ``RunContext.sweep`` cannot express) on
local processes, and giving a claim's sweeps a minimum number of worker processes.

A job is a JSON-able dict and a top-level function ``fn(job) -> dict`` (so spawned
processes can import it); results come back in job order whatever the worker count, and
each worker runs torch on one thread, so a seed gives the same numbers in every case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from signalprop.experiments._claim import RunContext


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_jobs(ctx: RunContext, fn: Callable[[dict[str, Any]], dict[str, Any]],
             jobs: list[dict[str, Any]], desc: str) -> list[dict[str, Any]]:
    """``[fn(job) for job in jobs]`` on ``ctx.workers`` spawned processes (in order).

    ``ctx.ray_address`` is not used (the jobs run locally; a line says so).

    Examples:
        >>> from pathlib import Path
        >>> ctx = RunContext("smoke", Path("."), progress=False)
        >>> run_jobs(ctx, dict, [{"a": 1}, {"a": 2}], "toy")
        [{'a': 1}, {'a': 2}]
    """
    from tqdm.auto import tqdm

    if ctx.ray_address is not None:
        ctx.log(f"  {desc}: these runs use their own training loop; --ray is not used, "
                "running locally")
    if ctx.workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(ctx.workers, len(jobs)), initializer=_one_thread,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(tqdm(pool.map(fn, jobs), total=len(jobs), disable=not ctx.progress,
                             desc=desc))
    _one_thread()
    return [fn(j) for j in tqdm(jobs, disable=not ctx.progress, desc=desc)]


def with_workers(ctx: RunContext, workers: int) -> RunContext:
    """``ctx`` with at least ``workers`` local processes (unchanged on Ray).

    A claim's ``--quick`` size can ask for 2 processes (the 2 cores it is budgeted for)
    while ``--workers N`` still raises it.

    Examples:
        >>> from pathlib import Path
        >>> with_workers(RunContext("quick", Path(".")), 2).workers
        2
    """
    if ctx.ray_address is not None or ctx.workers >= workers:
        return ctx
    return dataclasses.replace(ctx, workers=int(workers))
