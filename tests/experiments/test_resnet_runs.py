"""Helpers shared by the ResNet-training claims: grouping over seeds, diverged runs,
best learning rate (checked against brute force), lr chosen on a validation split and
reported on the test split (checked against refitted models)."""

import math
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from signalprop.data import load_dataset
from signalprop.experiments import RunContext
from signalprop.experiments._resnet_runs import (
    CHANCE,
    accuracy,
    at_best_lr,
    best_lr,
    by_seed,
    digits_resnet,
    evaluate_final,
    final_test_accuracy,
    metric,
    status,
    sweep_best_lr,
)
from signalprop.train import TrainConfig, fit


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


def _model_accuracy(model: torch.nn.Module, split) -> float:
    with torch.no_grad():
        return (model(split.x).argmax(1) == split.y).sum().item() / len(split)


def test_sweep_best_lr_picks_on_validation_and_reports_test(tmp_path: Path) -> None:
    base = {**digits_resnet([1], "bn", validation=0.2), "batch_size": 64, "steps": 4}
    ctx = RunContext("smoke", tmp_path, progress=False, log=lambda s: None)
    runs, val_acc, best = sweep_best_lr(ctx, "v", base, {"lr": [0.02, 0.3]}, [0, 1])
    val = load_dataset("digits", as_image=True, validation_fraction=0.2, holdout="validation")
    test = load_dataset("digits", as_image=True, validation_fraction=0.2)
    assert len(val.test) == 287 and len(test.test) == 359
    direct_val: dict[float, list[float]] = {}
    direct_test: dict[float, list[float]] = {}
    for run in sorted(runs, key=lambda r: r["config"]["seed"]):
        cfg = TrainConfig.from_dict(run["config"])
        model = fit(cfg, progress=False).model.eval()  # same seed, same weights
        direct_val.setdefault(cfg.lr, []).append(_model_accuracy(model, val.test))
        direct_test.setdefault(cfg.lr, []).append(_model_accuracy(model, test.test))
        loss, acc = evaluate_final(run, "train")
        with torch.no_grad():
            expected = float(F.cross_entropy(model(val.train.x), val.train.y))
        assert loss == pytest.approx(expected, rel=1e-5)
        assert acc == pytest.approx(_model_accuracy(model, test.train), abs=1e-6)
    for lr, values in direct_val.items():  # the runs' own held-out metric is validation
        assert val_acc[(lr,)] == pytest.approx(values, abs=1e-6)
    # brute force: the lr with the best mean validation accuracy (first on ties) ...
    means = {lr: sum(v) / len(v) for lr, v in sorted(direct_val.items())}
    chosen = next(lr for lr, m in means.items() if m == max(means.values()))
    # ... reported with the test accuracy of the same trained models
    assert best == {(): (chosen, pytest.approx(direct_test[chosen], abs=1e-6))}
    assert at_best_lr(runs, [], {(): (chosen, [])}) == [
        r for r in runs if r["config"]["lr"] == chosen]
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        evaluate_final(runs[0], "val")
    diverged = {**runs[0], "result": {**runs[0]["result"], "status": "diverged"}}
    assert final_test_accuracy(diverged) == CHANCE
