"""sgd-noise (Smith, Elsen & De, ICML 2020): at a fixed step budget, small or moderate
batches reach better test accuracy than very large ones, even where the large batch
reaches a lower training loss; the best learning rate grows about linearly with the
batch size while the batch is small.

SGD's gradient noise has scale ~ lr / B. While the batch is small, the best learning rate
keeps that scale at its best value (lr ~ B); once the batch is large, curvature caps the
learning rate and the noise, and with it its generalization benefit, fades.

Setup: ResNetV2 (CIFAR stem, one stage of two bottleneck blocks, BatchNorm, width 0.125)
on 1x8x8 digits; SGD with momentum 0.9 and cosine decay for the same number of steps at
every batch size; a learning-rate grid of factor 2 shared by all batch sizes. The training
loss is the final model's mean cross-entropy on the whole training set (eval mode).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from signalprop.experiments._claim import Claim, ClaimResult, RunContext
from signalprop.experiments._registry import register
from signalprop.experiments._rows import errorbar_lines
from signalprop.experiments._stats import diff_se, mean_se
from signalprop.experiments.claims._resnet_runs import (
    CHANCE,
    by_seed,
    digits_resnet,
    fmt,
    run_dir,
    status,
    summary,
    sweep_best_lr,
)

NAME = "sgd-noise"
SMALL_BATCH = 32  # the lr-scaling fit uses the batch sizes <= this
SLOPE_RANGE = (0.5, 1.5)  # "about linear": log-log slope of best lr against batch size
CRITERION = ("(a) some batch size below the largest reaches a mean test accuracy (each at "
             "its best learning rate) more than 2 standard errors above the largest batch's; "
             "(b) the largest batch's mean final training loss is lower than that batch "
             "size's; (c) the least-squares slope of log(best lr) against log(batch size) over "
             f"batch sizes <= {SMALL_BATCH} lies in [{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}]")

_LRS_QUICK = [0.0125 * 2**k for k in range(8)]  # 0.0125 .. 1.6
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"batches": [8, 32, 128], "lrs": [0.05, 0.2], "seeds": [0], "steps": 10},
    "quick": {"batches": [8, 32, 128, 512], "lrs": _LRS_QUICK, "seeds": [0, 1, 2],
              "steps": 200},
    "full": {"batches": [4, 8, 16, 32, 64, 128, 256, 512, 1024],
             "lrs": [0.003125 * 2**k for k in range(11)], "seeds": [0, 1, 2, 3, 4],
             "steps": 1000},
}


def train_loss(run: dict[str, Any]) -> float:
    """Mean cross-entropy of the run's final model over the whole training set.

    Rebuilds the model from the run's config and loads the weights from its final
    checkpoint; a diverged run has an infinite loss.
    """
    if status(run) == "diverged":
        return math.inf
    import torch

    from signalprop.data import load_dataset
    from signalprop.models import load_model
    from signalprop.train import TrainConfig, evaluate, load_checkpoint
    from signalprop.train.distributed import Dist

    cfg = TrainConfig.from_dict(run["config"])
    model = load_model(cfg.model, **cfg.model_args)
    model.load_state_dict(load_checkpoint(run_dir(run) / "checkpoint.pt")["model"])
    with torch.no_grad():
        loss, _ = evaluate(model, load_dataset(cfg.dataset, **cfg.dataset_args).train, Dist())
    return loss


def lr_slope(batches: list[int], lrs: list[float]) -> float:
    """Least-squares slope of log(lr) against log(batch size) (NaN for < 2 batch sizes).

    Examples:
        >>> round(lr_slope([8, 32], [0.05, 0.2]), 6)
        1.0
    """
    if len(batches) < 2:
        return math.nan
    return float(np.polyfit(np.log(batches), np.log(lrs), 1)[0])


def run(ctx: RunContext) -> ClaimResult:
    """Train every (batch, lr, seed) for the same steps; judge (a), (b) and (c)."""
    size = SIZES[ctx.mode]
    base = {**digits_resnet([2], "bn"), "steps": size["steps"], "log_every": 10}
    grid = {"batch_size": size["batches"], "lr": size["lrs"]}
    keys = list(grid)
    runs, acc, best_by_key = sweep_best_lr(ctx, "batch-lr", base, grid, size["seeds"])
    best = {b: v for (b,), v in best_by_key.items()}  # B -> (lr, per-seed acc)
    at_best = [r for r in runs if best[r["config"]["batch_size"]][0] == r["config"]["lr"]]
    loss = {b: v for (b, _), v in by_seed(at_best, keys, train_loss).items()}

    batches = size["batches"]
    b_max = batches[-1]
    gaps = {b: diff_se(best[b][1], best[b_max][1]) for b in batches[:-1]}
    better = [b for b, (d, se) in gaps.items() if math.isfinite(se) and d > 2 * se]
    winner = max(better, key=lambda b: gaps[b][0]) if better else None
    lower_loss = winner is not None and mean_se(loss[b_max])[0] < mean_se(loss[winner])[0]
    small = [b for b in batches if b <= SMALL_BATCH]
    slope = lr_slope(small, [best[b][0] for b in small])
    linear = SLOPE_RANGE[0] <= slope <= SLOPE_RANGE[1]
    reproduced = bool(winner is not None and lower_loss and linear)

    measurements = {
        "setup": {"depths": [2], "norm": "bn", "width": 0.125, "steps": size["steps"],
                  "batch_sizes": batches, "lr_grid": size["lrs"], "seeds": size["seeds"],
                  "momentum": 0.9, "schedule": "cosine", "dataset": "digits 1x8x8"},
        "test_acc": {f"B{b}/lr{lr:g}": summary(v) for (b, lr), v in sorted(acc.items())},
        "best": {f"B{b}": {"lr": lr, "test_acc": summary(v),
                           "train_loss": summary(loss[b])} for b, (lr, v) in best.items()},
        "minus_largest_batch": {f"B{b}": {"gap": d, "se": se} for b, (d, se) in gaps.items()},
        "a_better_than_largest": better,
        "b_largest_has_lower_train_loss_than_winner": bool(lower_loss),
        "c_lr_slope_small_batches": slope,
        "best_lr_at_grid_edge": [f"B{b}" for b, (lr, _) in best.items()
                                 if len(size["lrs"]) > 1
                                 and lr in (size["lrs"][0], size["lrs"][-1])],
    }
    top = winner if winner is not None else max(gaps, key=lambda b: gaps[b][0])
    effect = (f"test acc B={top} {fmt(*mean_se(best[top][1]))} vs B={b_max} "
              f"{fmt(*mean_se(best[b_max][1]))} (diff {fmt(*gaps[top])}); train loss "
              f"B={top} {fmt(*mean_se(loss[top]), 4)} vs B={b_max} "
              f"{fmt(*mean_se(loss[b_max]), 4)}; best lr "
              + ", ".join(f"B={b}: {best[b][0]:g}" for b in batches)
              + f"; slope over B<={SMALL_BATCH}: {slope:.2f}; criterion parts: (a) "
              + ("yes" if winner is not None else "no") + ", (b) "
              + (("yes" if lower_loss else "no") if winner is not None else "n/a") + ", (c) "
              + ("yes" if linear else "no"))
    _figure(ctx, batches, best, loss, size["steps"])
    return ClaimResult(NAME, ctx.mode, reproduced, effect, CRITERION, measurements,
                       "figure.png")


def _figure(ctx: RunContext, batches: list[int], best: dict, loss: dict, steps: int) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    fig.subplots_adjust(wspace=0.35)
    errorbar_lines(axes[0], batches, {"test accuracy": [best[b][1] for b in batches]})
    axes[0].axhline(CHANCE, color="grey", ls=":", lw=1)
    axes[0].set_ylabel("test accuracy at best lr")
    finite = [[v for v in loss[b] if math.isfinite(v)] or [math.nan] for b in batches]
    errorbar_lines(axes[1], batches, {"training loss": finite}, color="C1")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("final training loss at best lr")
    axes[2].plot(batches, [best[b][0] for b in batches], marker="o", label="best lr")
    ref = best[batches[0]][0]
    axes[2].plot(batches, [ref * b / batches[0] for b in batches], ls="--", color="grey",
                 label="lr proportional to B")
    axes[2].set_yscale("log", base=2)
    axes[2].set_ylabel("best learning rate")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
    axes[0].set_title(f"digits, {steps} steps: mean +- s.e. over seeds", fontsize=9)
    save(fig, ctx.out / "figure.png")


CLAIM = register(Claim(
    name=NAME,
    paper="Smith, Elsen & De (ICML 2020)",
    statement=("At a fixed step budget, small or moderate batches reach better test "
               "accuracy than very large ones even where the large batch reaches a lower "
               "training loss; the best learning rate grows about linearly with batch size "
               "while batches are small."),
    criterion=CRITERION,
    run=run,
    quick_minutes=6.0,
))
