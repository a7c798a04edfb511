"""_pool: own-loop jobs run in order on one or several processes with the same results;
a minimum worker count for a claim's sweeps."""

from pathlib import Path

import pytest

from signalprop.experiments import RunContext
from signalprop.experiments._pool import run_jobs, with_workers


def _square(job: dict) -> dict:
    import torch

    return {"x": job["x"], "y": job["x"] ** 2, "threads": torch.get_num_threads()}


def test_run_jobs_in_process_keeps_order_and_one_thread(tmp_path: Path) -> None:
    jobs = [{"x": x} for x in (3, 1, 2)]
    out = run_jobs(RunContext("smoke", tmp_path, progress=False), _square, jobs, "t")
    assert [r["y"] for r in out] == [9, 1, 4] and {r["threads"] for r in out} == {1}


@pytest.mark.slow
def test_run_jobs_on_processes_gives_the_same(tmp_path: Path) -> None:
    jobs = [{"x": x} for x in (3, 1, 2)]
    here = run_jobs(RunContext("smoke", tmp_path, progress=False), _square, jobs, "t")
    pool = run_jobs(RunContext("smoke", tmp_path, workers=2, progress=False), _square, jobs, "t")
    assert pool == here


def test_with_workers_raises_to_the_minimum_only(tmp_path: Path) -> None:
    ctx = RunContext("quick", tmp_path)
    assert with_workers(ctx, 2).workers == 2 and ctx.workers == 1  # a copy
    assert with_workers(RunContext("quick", tmp_path, workers=4), 2).workers == 4
    ray = RunContext("quick", tmp_path, ray_address="auto")
    assert with_workers(ray, 2) is ray
