"""adam-nag: one autoencoder run records what it says, deterministically; the process pool
gives the same runs; the best lr per optimizer; decide on hand-made losses; smoke run."""

import math
from pathlib import Path

import pytest

from signalprop.experiments import RunContext
from signalprop.experiments.claims.optimization.adam_nag import (
    _run_all,
    best_lrs,
    decide,
    train_autoencoder,
)


def test_one_run_records_curves_and_is_deterministic() -> None:
    job = {"family": "nag mu=0.9", "lr": 0.01, "seed": 0, "steps": 40, "batch": 64,
           "record_every": 20, "hessian_every": 40, "hidden": [8, 4, 8]}
    r = train_autoencoder(job)
    assert r["status"] == "completed" and r["record"]["step"] == [0, 20, 40]
    assert r["hessian"]["step"] == [0, 40]
    assert r["final_train_loss"] < r["record"]["train_loss"][0]
    assert r["hessian"]["min_eig"][0] <= r["hessian"]["max_eig"][0]
    again = train_autoencoder(job)  # deterministic in the seed
    assert again["record"] == r["record"]


@pytest.mark.slow
def test_workers_give_the_same_runs(tmp_path: Path) -> None:
    jobs = [{"family": f, "lr": 0.01, "seed": 1, "steps": 20, "batch": 64,
             "record_every": 10, "hessian_every": 20, "hidden": [8, 4, 8]}
            for f in ("adam b1=0.99", "nag mu=0.9")]
    here = _run_all(RunContext("full", tmp_path, progress=False), jobs)
    pool = _run_all(RunContext("full", tmp_path, workers=2, progress=False), jobs)
    assert [r["record"] for r in pool] == [r["record"] for r in here]


def _measurements(final: dict[str, dict[float, list[float]]],
                  test: dict[str, dict[float, list[float]]] | None = None) -> dict:
    """Final losses per family and lr, as measure stores them (lr keys as text)."""
    test = test or final
    return {"lrs": {f: list(by_lr) for f, by_lr in final.items()},
            "final_train_loss": {f: {str(lr): v for lr, v in d.items()} for f, d in final.items()},
            "final_test_loss": {f: {str(lr): v for lr, v in d.items()} for f, d in test.items()},
            "runs": []}


def test_best_lr_is_the_lowest_mean_training_loss() -> None:
    m = _measurements({"adam b1=0.99": {1e-3: [0.3, 0.31], 3e-3: [0.1, 0.11], 1e-2: [0.1, 0.2]},
                       "nag mu=0.99": {0.01: [0.4, math.inf], 0.1: [0.5, 0.5]}})
    assert best_lrs(m) == {"adam b1=0.99": 3e-3, "nag mu=0.99": 0.1}


def test_decide_passes_adam_ahead_and_fails_when_nag_is_lower() -> None:
    final = {"adam b1=0.99": {1e-3: [0.30, 0.31, 0.29], 3e-3: [0.240, 0.238, 0.243]},
             "adam b1=0.9": {1e-3: [0.25, 0.26, 0.25]},
             "nag mu=0.9": {0.1: [0.271, 0.268, 0.273], 0.3: [0.4, 0.5, math.inf]},
             "nag mu=0.99": {0.03: [0.262, 0.259, 0.266]}}
    out = decide(_measurements(final))
    assert out.reproduced, out.effect
    assert out.details["best_nag"] == "nag mu=0.99"
    assert out.details["best_lr_at_edge"] == []
    # NAG lower than Adam (the quick run's direction for the test loss): fails
    lower = {**final, "nag mu=0.9": {0.1: [0.230, 0.229, 0.232], 0.3: [0.4, 0.5, math.inf]}}
    out = decide(_measurements(lower))
    assert not out.reproduced and out.details["best_nag"] == "nag mu=0.9"
    assert not out.details["train_ok"] and not out.details["test_ok"]
    # lower training loss but not test loss: fails too
    test = {**final, "adam b1=0.99": {1e-3: [0.30, 0.31, 0.29], 3e-3: [0.27, 0.26, 0.28]}}
    out = decide(_measurements(final, test))
    assert not out.reproduced and out.details["train_ok"] and not out.details["test_ok"]


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("adam-nag", tmp_path)  # files written, result.json re-decides alike
