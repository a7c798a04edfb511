"""bn-batchsize (De & Smith, NeurIPS 2020; Smith, Elsen & De, ICML 2020): at a fixed epoch
budget BatchNorm beats its unnormalized alternatives only when the batch is large.

BatchNorm lets a ResNet train at larger learning rates; that matters only when the run
has few steps (large batches at a fixed epoch budget). At small batches the best learning
rate is limited by gradient noise, not by stability, so SkipInit and NF-ResNets match BN.

Setup: ResNetV2 (CIFAR stem, width 0.125) with bn, skipinit and nf blocks on 1x8x8
digits; SGD with momentum 0.9, cosine decay, a fixed number of epochs at every batch
size (an epoch is floor(1438 / B) steps); each (norm, batch size) at the learning rate
of a small grid with the highest mean test accuracy over seeds.
"""

from __future__ import annotations

import math
from typing import Any

from signalprop.experiments._claim import Claim, ClaimResult, RunContext
from signalprop.experiments._registry import register
from signalprop.experiments._stats import diff_se
from signalprop.experiments.claims._resnet_runs import (
    accuracy_vs_batch,
    digits_resnet,
    fmt,
    summary,
    sweep_best_lr,
)

NAME = "bn-batchsize"
NORMS = ("bn", "skipinit", "nf")
LABELS = ("BatchNorm", "SkipInit", "NF (Scaled WS)")
SMALL_GAP = 0.02  # "minimal benefit": BN ahead by less than 2 accuracy points
CRITERION = ("BN minus SkipInit test accuracy (each at its best learning rate) is more "
             "than 2 standard errors above 0 at the largest batch size and below "
             f"{SMALL_GAP} at the smallest (NF's gaps are reported, not judged)")

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"depths": [1], "batches": [32, 256], "lrs": [0.08, 0.32], "seeds": [0],
              "epochs": 1},
    "quick": {"depths": [2], "batches": [16, 64, 256, 1024], "lrs": [0.02, 0.08, 0.32, 1.28],
              "seeds": [0, 1, 2], "epochs": 10},
    "full": {"depths": [2, 2], "batches": [8, 16, 32, 64, 128, 256, 512, 1024],
             "lrs": [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56],
             "seeds": [0, 1, 2, 3, 4], "epochs": 20},
}


def run(ctx: RunContext) -> ClaimResult:
    """Train every (norm, batch, lr, seed); compare the norms at their best lr per batch."""
    size = SIZES[ctx.mode]
    base = {**digits_resnet(size["depths"], "bn"), "epochs": size["epochs"],
            "log_every": 5}
    grid = {"model_args.norm": list(NORMS), "batch_size": size["batches"], "lr": size["lrs"]}
    _, acc, best = sweep_best_lr(ctx, "norm-batch-lr", base, grid, size["seeds"])

    batches = size["batches"]
    # BN minus each alternative, at every batch size: (mean over seeds, its s.e.)
    gaps = {other: {b: diff_se(best[("bn", b)][1], best[(other, b)][1]) for b in batches}
            for other in ("skipinit", "nf")}
    d_large, se_large = gaps["skipinit"][batches[-1]]
    d_small, _ = gaps["skipinit"][batches[0]]
    reproduced = bool(math.isfinite(se_large) and d_large > 2 * se_large
                      and d_small < SMALL_GAP)

    measurements = {
        "setup": {"depths": size["depths"], "width": 0.125, "epochs": size["epochs"],
                  "batch_sizes": batches, "lr_grid": size["lrs"], "seeds": size["seeds"],
                  "momentum": 0.9, "schedule": "cosine", "dataset": "digits 1x8x8"},
        "test_acc": {f"{n}/B{b}/lr{lr}": summary(v) for (n, b, lr), v in sorted(acc.items())},
        "best": {f"{n}/B{b}": {"lr": lr, **summary(v)} for (n, b), (lr, v) in best.items()},
        "bn_minus": {other: {f"B{b}": {"gap": d, "se": se} for b, (d, se) in g.items()}
                     for other, g in gaps.items()},
        "best_lr_at_grid_edge": sorted(f"{n}/B{b}" for (n, b), (lr, _) in best.items()
                                       if lr in (size["lrs"][0], size["lrs"][-1])),
    }
    effect = (f"BN - SkipInit acc at B={batches[-1]}: {fmt(d_large, se_large)}, at "
              f"B={batches[0]}: {fmt(*gaps['skipinit'][batches[0]])}; BN - NF at "
              f"B={batches[-1]}: {fmt(*gaps['nf'][batches[-1]])}, at "
              f"B={batches[0]}: {fmt(*gaps['nf'][batches[0]])}")
    _figure(ctx, batches, best, size["epochs"])
    return ClaimResult(NAME, ctx.mode, reproduced, effect, CRITERION, measurements, "figure.png")


def _figure(ctx: RunContext, batches: list[int], best: dict, epochs: int) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    accuracy_vs_batch(ax, batches, best, dict(zip(NORMS, LABELS)),
                      f"digits, {epochs} epochs: mean +- s.e. over seeds")
    for norm, label, marker, size in zip(NORMS, LABELS, "os^", (9, 6, 4)):
        # distinct markers: several norms often share a best lr
        ax_lr.plot(batches, [best[(norm, b)][0] for b in batches], marker=marker,
                   markersize=size, alpha=0.8, label=label)
    ax_lr.set_xscale("log", base=2)
    ax_lr.set_xlabel("batch size")
    ax_lr.set_yscale("log", base=2)
    ax_lr.set_ylabel("best learning rate")
    save(fig, ctx.out / "figure.png")


CLAIM = register(Claim(
    name=NAME,
    paper="De & Smith (NeurIPS 2020); Smith, Elsen & De (ICML 2020)",
    statement=("At a fixed epoch budget, with each network at its best learning rate, "
               "BatchNorm's advantage over unnormalized ResNets appears only at large "
               "batch sizes."),
    criterion=CRITERION,
    run=run,
    quick_minutes=5.0,
))
