"""Helpers shared by the ResNet-training claims: grouping over seeds, diverged runs,
best learning rate (checked against brute force)."""

import doctest
import importlib
import math
import random

import pytest

from signalprop.experiments.claims._resnet_runs import (
    CHANCE,
    accuracy,
    best_lr,
    by_seed,
    metric,
    status,
)


def _run(lr: float, seed: int, st: str = "completed", acc: float = 0.5) -> dict:
    return {"config": {"lr": lr, "seed": seed, "model_args": {"name_or_depths": [2]}},
            "result": {"status": st, "metrics": {"test_acc": acc, "train_loss": math.nan}},
            "history": "/x/runs/a/metrics.jsonl"}


def test_diverged_runs_score_chance_and_failed_runs_raise() -> None:
    assert accuracy(_run(0.1, 0, "diverged", 0.9)) == CHANCE
    assert accuracy(_run(0.1, 0, acc=0.7)) == 0.7
    assert math.isnan(metric(_run(0.1, 0), "train_loss"))
    assert math.isnan(metric(_run(0.1, 0), "test_loss"))  # never recorded
    with pytest.raises(RuntimeError, match="failed"):
        status(_run(0.1, 0, "failed"))


def test_by_seed_orders_values_by_seed_and_keys_lists_as_tuples() -> None:
    runs = [_run(0.1, 2, acc=0.3), _run(0.1, 0, acc=0.1), _run(0.2, 1, acc=0.9)]
    got = by_seed(runs, ["model_args.name_or_depths", "lr"], accuracy)
    assert got == {((2,), 0.1): [0.1, 0.3], ((2,), 0.2): [0.9]}


def test_best_lr_matches_brute_force() -> None:
    rng = random.Random(0)
    acc = {(norm, b, lr): [rng.random() for _ in range(3)]
           for norm in ("bn", "nf") for b in (4, 64) for lr in (0.01, 0.1, 1.0)}
    got = best_lr(acc)
    for norm in ("bn", "nf"):
        for b in (4, 64):
            means = {lr: sum(acc[(norm, b, lr)]) / 3 for lr in (0.01, 0.1, 1.0)}
            lr = max(means, key=means.get)
            assert got[(norm, b)] == (lr, acc[(norm, b, lr)])


@pytest.mark.parametrize("name", ["_resnet_runs", "skipinit_depth", "bn_batchsize",
                                  "nf_vs_bn", "sgd_noise"])
def test_doctests(name: str) -> None:
    module = importlib.import_module(f"signalprop.experiments.claims.{name}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
