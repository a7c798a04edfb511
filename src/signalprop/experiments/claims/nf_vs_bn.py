"""nf-vs-bn (Brock, De & Smith, ICLR 2021): NF-ResNets match BatchNorm ResNets at a
moderate batch size and are much better at batch sizes 2-4.

BatchNorm normalizes with statistics of the current batch during training and with
running averages at test time; with 2-4 examples (and few spatial positions in the last
stage) the two disagree and the batch statistics are noisy. NF-ResNets have no batch
dependence at all.

Setup: ResNetV2 with three stages of one bottleneck block (CIFAR stem, width 0.125; the
last stage sees 2x2 feature maps) on 1x8x8 digits; SGD with momentum 0.9, cosine decay,
the same number of epochs at every batch size; each (norm, batch size) at the learning
rate of a small grid with the highest mean test accuracy over seeds.
"""

from __future__ import annotations

import math
from typing import Any

from signalprop.experiments._claim import Claim, ClaimResult, RunContext
from signalprop.experiments._registry import register
from signalprop.experiments._stats import diff_se, mean_se
from signalprop.experiments.claims._resnet_runs import (
    accuracy_vs_batch,
    digits_resnet,
    fmt,
    summary,
    sweep_best_lr,
)

NAME = "nf-vs-bn"
NORMS = ("bn", "nf")
MODERATE = 64
TINY = 4  # the judged batch sizes are those <= TINY
COMPARABLE = 0.02  # |NF - BN| below 2 accuracy points
MUCH_BETTER = 0.05  # NF ahead by at least 5 accuracy points
CRITERION = (f"at batch {MODERATE} the mean NF - BN test accuracy (each at its best "
             f"learning rate) lies within +-{COMPARABLE}; at every batch size <= {TINY} "
             f"NF - BN exceeds both {MUCH_BETTER} and 2 standard errors")

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"batches": [4, 64], "lrs": [0.03], "seeds": [0], "epochs": 1,
              "subset_steps": 20},
    "quick": {"batches": [4, 64], "lrs": [0.01, 0.03, 0.1, 0.3], "seeds": [0, 1, 2],
              "epochs": 4},
    "full": {"batches": [2, 4, 8, 16, 64, 256], "lrs": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
             "seeds": [0, 1, 2, 3, 4], "epochs": 10},
}


def run(ctx: RunContext) -> ClaimResult:
    """Train bn / nf at every (batch, lr, seed); compare them at their best lr per batch."""
    size = SIZES[ctx.mode]
    base = {**digits_resnet([1, 1, 1], "bn"), "log_every": 20}
    if "subset_steps" in size:  # smoke: a fixed handful of steps, not whole epochs
        base["steps"] = size["subset_steps"]
    else:
        base["epochs"] = size["epochs"]
    grid = {"model_args.norm": list(NORMS), "batch_size": size["batches"], "lr": size["lrs"]}
    _, acc, best = sweep_best_lr(ctx, "norm-batch-lr", base, grid, size["seeds"])

    batches = size["batches"]
    gaps = {b: diff_se(best[("nf", b)][1], best[("bn", b)][1]) for b in batches}
    d_mod = gaps[MODERATE][0]
    tiny = [b for b in batches if b <= TINY]
    much_better = {b: bool(math.isfinite(gaps[b][1]) and gaps[b][0] > max(MUCH_BETTER,
                                                                           2 * gaps[b][1]))
                   for b in tiny}
    reproduced = abs(d_mod) <= COMPARABLE and all(much_better.values())

    measurements = {
        "setup": {"depths": [1, 1, 1], "width": 0.125, "epochs": size["epochs"],
                  "steps": size.get("subset_steps"), "batch_sizes": batches,
                  "lr_grid": size["lrs"], "seeds": size["seeds"], "momentum": 0.9,
                  "schedule": "cosine", "dataset": "digits 1x8x8"},
        "test_acc": {f"{n}/B{b}/lr{lr}": summary(v) for (n, b, lr), v in sorted(acc.items())},
        "best": {f"{n}/B{b}": {"lr": lr, **summary(v)} for (n, b), (lr, v) in best.items()},
        "nf_minus_bn": {f"B{b}": {"gap": d, "se": se} for b, (d, se) in gaps.items()},
        "comparable_at_moderate": abs(d_mod) <= COMPARABLE,
        "nf_much_better_at": {f"B{b}": v for b, v in much_better.items()},
        "best_lr_at_grid_edge": sorted(f"{n}/B{b}" for (n, b), (lr, _) in best.items()
                                       if len(size["lrs"]) > 1
                                       and lr in (size["lrs"][0], size["lrs"][-1])),
    }
    effect = "; ".join(f"NF - BN acc at B={b}: {fmt(*gaps[b])} (NF "
                       f"{fmt(*mean_se(best[('nf', b)][1]))}, BN "
                       f"{fmt(*mean_se(best[('bn', b)][1]))})" for b in batches)
    _figure(ctx, batches, best)
    return ClaimResult(NAME, ctx.mode, bool(reproduced), effect, CRITERION, measurements,
                       "figure.png")


def _figure(ctx: RunContext, batches: list[int], best: dict) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    accuracy_vs_batch(ax, batches, best, {"bn": "BatchNorm", "nf": "NF-ResNet (Scaled WS)"},
                      "digits: mean +- s.e. over seeds")
    ax.set_ylim(0, 1.02)
    save(fig, ctx.out / "figure.png")


CLAIM = register(Claim(
    name=NAME,
    paper="Brock, De & Smith (ICLR 2021)",
    statement=("NF-ResNets and BatchNorm ResNets reach comparable test accuracy at a "
               "moderate batch size; NF-ResNets are much better at batch size 2-4."),
    criterion=CRITERION,
    run=run,
    quick_minutes=4.0,
))
