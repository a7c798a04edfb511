"""tune_then_judge: the lr picked on validation by mean accuracy (diverged = chance), the
largest stable lr, judged runs on fresh seeds and the test split; checked by brute force
against a fake sweep whose accuracy is a known function of the config."""

import math

import pytest

from signalprop.experiments._tuning import (
    best_and_stable,
    run_accuracy,
    tune_then_judge,
    with_values,
)


class FakeContext:
    """ctx.sweep without training: accuracy = acc(config), diverged above an lr cap."""

    def __init__(self, acc, cap):
        self.acc, self.cap, self.calls = acc, cap, []

    def sweep(self, name, base, grid, seeds):
        self.calls.append((name, base, grid, list(seeds)))
        rows = []
        for lr in grid.get("lr", [base.get("lr")]):
            for seed in seeds:
                cfg = {**base, "lr": lr, "seed": seed}
                div = lr > self.cap(cfg)
                rows.append({"config": cfg, "history": f"/x/{name}/metrics.jsonl", "result": {
                    "status": "diverged" if div else "completed",
                    "metrics": {} if div else {"test_acc": self.acc(cfg), "train_loss": 0.5}}})
        return rows


def _acc(cfg):  # peaks at lr 0.1 for bn, 0.03 for none; the seed adds noise; test != val
    best = {"bn": 0.1, "none": 0.03}[cfg["model_args"]["norm"]]
    split = 0.01 if cfg["dataset_args"]["holdout"] == "test" else 0.0
    return 0.8 - 0.1 * abs(math.log10(cfg["lr"] / best)) + 0.001 * cfg["seed"] - split


def _cap(cfg):
    return {"bn": 1.0, "none": 0.1}[cfg["model_args"]["norm"]]


def test_with_values_sets_dotted_keys_without_touching_the_base() -> None:
    base = {"model_args": {"depth": 2}, "lr": 0.1}
    out = with_values(base, {"model_args.norm": "bn", "batch_size": 8})
    assert out == {"model_args": {"depth": 2, "norm": "bn"}, "lr": 0.1, "batch_size": 8}
    assert base == {"model_args": {"depth": 2}, "lr": 0.1}


def test_best_and_stable_match_brute_force() -> None:
    lrs = [1.0, 0.01, 0.1, 0.3]  # not sorted: the order of the grid must not matter
    val = [[0.1, 0.1], [0.5, 0.58], [0.55, 0.55], [0.55, 0.55]]
    div = [[True, False], [False, False], [False, False], [False, False]]
    # 0.1 and 0.3 tie at 0.55: the smaller wins; 1.0 diverged once: 0.3 is the largest stable
    assert best_and_stable(lrs, val, div) == (0.1, 0.3)
    assert best_and_stable([0.1], [[0.1]], [[True]]) == (0.1, None)


def test_run_accuracy_scores_diverged_and_missing_as_chance() -> None:
    row = {"result": {"status": "completed", "metrics": {"test_acc": float("nan")}}}
    assert run_accuracy(row, 0.25) == 0.25
    with pytest.raises(RuntimeError, match="failed"):
        run_accuracy({"result": {"status": "failed", "metrics": {}}, "history": "h"}, 0.1)


def test_tune_then_judge_picks_on_validation_and_judges_fresh_seeds_on_test() -> None:
    ctx = FakeContext(_acc, _cap)
    base = {"model_args": {"depth": 2}, "dataset_args": {"num_samples": 100}}
    settings = {"bn/D2": {"model_args.norm": "bn"}, "none/D2": {"model_args.norm": "none"}}
    grid = [0.01, 0.03, 0.1, 0.3, 1.0]
    out = tune_then_judge(ctx, "t", base, settings, dict.fromkeys(settings, grid), [100, 101],
                          [0, 1, 2], chance=0.1)
    assert out["bn/D2"]["lr"] == 0.1 and out["none/D2"]["lr"] == 0.03
    assert out["bn/D2"]["largest_stable_lr"] == 1.0 and out["none/D2"]["largest_stable_lr"] == 0.1
    assert out["none/D2"]["tune_diverged"][-2:] == [[True, True], [True, True]]
    assert out["none/D2"]["val_acc"][-1] == [0.1, 0.1]  # diverged: chance
    # judged: fresh seeds, test split, at the chosen lr
    assert out["bn/D2"]["test_acc"] == pytest.approx([0.79, 0.791, 0.792])
    tune_calls = [c for c in ctx.calls if "-tune-" in c[0]]
    judge_calls = [c for c in ctx.calls if "-judge-" in c[0]]
    assert {c[1]["dataset_args"]["holdout"] for c in tune_calls} == {"validation"}
    assert {c[1]["dataset_args"]["holdout"] for c in judge_calls} == {"test"}
    assert all(c[1]["dataset_args"]["validation_fraction"] == 0.2 for c in ctx.calls)
    assert all(c[1]["dataset_args"]["num_samples"] == 100 for c in ctx.calls)
    assert [c[3] for c in judge_calls] == [[0, 1, 2]] * 2 and judge_calls[0][2] == {}
    assert not out["bn/D2"]["lr_at_grid_edge"]


def test_tune_then_judge_refuses_judging_on_tuning_seeds() -> None:
    with pytest.raises(ValueError, match="fresh"):
        tune_then_judge(FakeContext(_acc, _cap), "t", {}, {"a": {}}, {"a": [0.1]}, [0, 1],
                        {"a": [1, 2]}, chance=0.1)
