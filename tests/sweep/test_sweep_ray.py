"""The Ray path: a local Ray instance (2 CPUs) runs a small sweep; the driver writes the rows."""

import os

import pytest

from signalprop.sweep import SweepDB, SweepSpec, run_sweep

BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris", "steps": 10, "batch_size": 16}


def rows(out):
    with SweepDB(out / "sweep.sqlite", create=False) as db:
        return {r["run_id"]: r for r in db.rows()}


@pytest.mark.slow
def test_sweep_runs_as_ray_tasks_with_the_same_results_as_locally(tmp_path, local_ray):
    data = {"base": BASE, "grid": {"lr": [0.3, 0.03], "optimizer": ["sgd", "nag"]}}
    spec = SweepSpec.from_dict(data, default_out=tmp_path / "ray")
    summary = run_sweep(spec, ray_address="auto", progress=False, log=lambda m: None)
    assert summary.ran == 4 and summary.counts["completed"] == 4
    got = rows(tmp_path / "ray")
    assert len(got) == 4
    for r in got.values():  # each ran in a Ray worker process, not in this one
        assert r["worker"] and not r["worker"].endswith(f":{os.getpid()}") and r["worker"] != "ray"
    local = SweepSpec.from_dict(data, default_out=tmp_path / "local")
    run_sweep(local, progress=False, log=lambda m: None)
    ref = rows(tmp_path / "local")
    for run_id, r in got.items():
        assert (r["status"], r["test_loss"], r["train_loss"]) == (ref[run_id]["status"], ref[run_id]["test_loss"], ref[run_id]["train_loss"])
    again = run_sweep(spec, ray_address="auto", progress=False, log=lambda m: None)
    assert (again.ran, again.skipped) == (0, 4)
    assert local_ray.is_initialized()  # the caller's connection is left open
