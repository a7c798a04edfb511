"""RunContext.sweep through the Ray path: a local Ray instance (2 CPUs) runs a tiny grid;
the rows match the same grid run in this process (``local_ray``: tests/conftest.py)."""

import os
from pathlib import Path

import pytest

from signalprop.experiments import RunContext
from signalprop.sweep import SweepDB

BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3},
        "dataset": "iris", "steps": 5, "batch_size": 16}


@pytest.mark.slow
def test_context_sweep_runs_on_ray_like_locally(tmp_path: Path, local_ray) -> None:
    on_ray = RunContext("full", tmp_path / "ray", ray_address="auto", progress=False,
                        log=lambda m: None)
    rows = on_ray.sweep("tiny", BASE, {"lr": [0.1, 0.01]}, seeds=[0])
    with SweepDB(tmp_path / "ray" / "sweeps" / "tiny" / "sweep.sqlite", create=False) as db:
        workers = [r["worker"] for r in db.rows()]
    # each run ran in a Ray worker process, not in this one
    assert len(workers) == 2 and all(w and not w.endswith(f":{os.getpid()}") for w in workers)
    here = RunContext("full", tmp_path / "local", progress=False, log=lambda m: None)
    local = here.sweep("tiny", BASE, {"lr": [0.1, 0.01]}, seeds=[0])
    assert [r["label"] for r in rows] == [r["label"] for r in local]
    assert [r["config"] for r in rows] == [r["config"] for r in local]
    for r, ref in zip(rows, local):
        assert r["result"]["status"] == ref["result"]["status"] == "completed"
        assert r["result"]["metrics"]["test_acc"] == ref["result"]["metrics"]["test_acc"]
        assert r["result"]["metrics"]["train_loss"] == ref["result"]["metrics"]["train_loss"]
        assert Path(r["history"]).is_file()
