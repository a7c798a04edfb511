"""counting-ood: decide on hand-made accuracies (the claimed effect at realistic noise
passes, nulls fail), the learning-rate choice, one deterministic training run, smoke run."""

import math
from pathlib import Path

import pytest

from signalprop.experiments.claims.sequence.counting_ood import (
    VARIANTS,
    best_lrs,
    decide,
    train_counter,
)


def _m(accs: dict[str, list[float]]) -> dict:
    runs = [{"variant": v, "lr": 3e-3, "seed": s, "ood_acc": a, "val_acc": 0.5,
             "val_mse": 0.2} for v, vals in accs.items() for s, a in enumerate(vals)]
    return {"best_lr": {v: 3e-3 for v in VARIANTS}, "runs": runs}


EFFECT = {"neither": [1.0, 0.97, 0.995], "standard": [0.004, 0.0, 0.012],
          "no LayerNorm": [0.0, 0.02, 0.006], "no softmax": [0.03, 0.0, 0.09]}


def test_decide_passes_the_claimed_effect():
    out = decide(_m(EFFECT))
    assert out.reproduced, out.effect
    assert out.details["neither_near_perfect"] and all(out.details["others_below"].values())


@pytest.mark.parametrize("change", [
    {"neither": [0.85, 0.9, 0.88]},                 # not near-perfect
    {"neither": [1.0, 1.0, 0.7]},                   # one seed fails
    {"no softmax": [0.95, 0.9, 0.97]},              # a single ablation suffices
    {"standard": [0.3, 0.32, 0.28]},                # single ablations below the standard
    {v: [0.0, 0.0, 0.0] for v in VARIANTS},         # nothing counts
])
def test_decide_fails_the_nulls(change):
    assert not decide(_m({**EFFECT, **change})).reproduced


def test_best_lr_is_the_lowest_mean_validation_mse():
    rows = [{"variant": "standard", "lr": lr, "val_mse": v}
            for lr, v in ((1e-3, 1.0), (1e-3, 1.2), (1e-2, 0.5), (1e-2, math.nan))]
    assert best_lrs(rows) == {"standard": 1e-3}


def test_one_run_trains_and_is_deterministic():
    job = {"variant": "neither", "lr": 3e-3, "seed": 0, "steps": 30, "batch": 16,
           "num_train": 128, "num_val": 32, "num_ood": 4, "ood_length": 64,
           "profile_lengths": [4, 16]}
    r = train_counter(job)
    assert r["val_mse"] < 5.0 and 0.0 <= r["ood_acc"] <= 1.0
    assert r["profile"]["lengths"] == [4, 16] and len(r["profile"]["count_corr"]) == 2
    again = train_counter(job)
    assert again["val_mse"] == r["val_mse"] and again["ood_acc"] == r["ood_acc"]


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("counting-ood", tmp_path)
