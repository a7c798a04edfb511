"""nf-vs-bn (Brock, De & Smith, ICLR 2021): NF-ResNets match BatchNorm ResNets at a
moderate batch size and are much better at batch sizes 2-4.

BatchNorm normalizes with statistics of the current batch during training and with
running averages at test time; with 2-4 examples (and few spatial positions in the last
stage) the two disagree and the batch statistics are noisy. NF-ResNets have no batch
dependence at all.

Setup: ResNetV2 with three stages of one bottleneck block (CIFAR stem, width 0.125; the
last stage sees 2x2 feature maps) on 1x8x8 digits; SGD with momentum 0.9, cosine decay;
each (norm, batch size) at the learning rate of its grid with the highest mean
VALIDATION accuracy over seeds, then judged by the test accuracy of those same runs.

Design (revised after the first quick run, criterion unchanged; see issue 7):

- Learning rates are chosen on a validation split (20% of each class of the training
  examples: 1151 train / 287 validation / 359 test), never on the test split; the first
  design picked the lr with the best mean test accuracy and then compared test
  accuracies (selection on the evaluated metric).
- Each batch size has its own lr grid (``SIZES[mode]["lrs"]``, half-decade steps), wider
  than the old shared grid 0.01 ... 0.3, at whose edges BN's best lr at B = 64 (0.3) and
  NF's at B = 4 (0.01) sat; edges are still recorded.
- Each batch size has its own epoch budget, long enough that both networks train: at
  B = 64 the old 4 epochs are under 100 steps, after which NF was still behind (one seed, on
  validation: NF 0.965 with a training loss over the last 20 steps of 0.065 vs BN 0.979;
  at 10 epochs 0.983 vs 0.986 with losses 0.002 and 0.007), so the moderate-batch comparison
  measured training speed. B = 4 trains in 4 epochs (~1150 steps; BN 0.990, NF 0.979 on
  validation), and 10 epochs there would not fit the quick mode's time. The final
  training loss at the chosen lr is recorded.
- Probing the design (one seed, validation) BN did not break down at B = 4 or even B = 2
  (0.979 at lr 0.01, 4 epochs) on these 8x8 images; the quick mode keeps the judged
  batch sizes 4 and 64 (B = 2 doubles the cost of B = 4); full mode adds 2, 8, 16, 256.
"""

from __future__ import annotations

import math
from typing import Any

from signalprop.experiments._claim import Claim, ClaimResult, RunContext
from signalprop.experiments._registry import register
from signalprop.experiments._stats import diff_se, mean_se
from signalprop.experiments.claims._resnet_runs import (
    accuracy_vs_batch,
    at_best_lr,
    by_seed,
    digits_resnet,
    fmt,
    metric,
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

VALIDATION = 0.2  # share of each class of the training examples used to choose the lr
_FULL_LRS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
# per batch size: its epochs and its lr grid (smoke: a fixed handful of steps instead)
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"batches": [4, 64], "lrs": {4: [0.03], 64: [0.03]}, "seeds": [0],
              "epochs": {4: 1, 64: 1}, "subset_steps": 20},
    "quick": {"batches": [4, 64],
              "lrs": {4: [0.001, 0.003, 0.01, 0.03, 0.1], 64: [0.01, 0.03, 0.1, 0.3, 1.0]},
              "seeds": [0, 1, 2], "epochs": {4: 4, 64: 10}},
    "full": {"batches": [2, 4, 8, 16, 64, 256],
             "lrs": {b: _FULL_LRS for b in (2, 4, 8, 16, 64, 256)},
             "seeds": [0, 1, 2, 3, 4], "epochs": {b: 10 for b in (2, 4, 8, 16, 64, 256)}},
}


def run(ctx: RunContext) -> ClaimResult:
    """Train bn / nf at every (batch, lr, seed); compare them at their best lr per batch."""
    size = SIZES[ctx.mode]
    batches = size["batches"]
    keys = ["model_args.norm", "batch_size"]
    acc: dict[tuple, list[float]] = {}  # (norm, B, lr) -> per-seed validation accuracy
    best: dict[tuple, tuple[float, list[float]]] = {}  # (norm, B) -> (lr, per-seed test acc)
    train_loss: dict[tuple, list[float]] = {}  # (norm, B) -> per-seed loss at the best lr
    for b in batches:  # one sweep per batch size: each has its own epochs and lr grid
        base = {**digits_resnet([1, 1, 1], "bn", validation=VALIDATION), "log_every": 20}
        if "subset_steps" in size:  # smoke: a fixed handful of steps, not whole epochs
            base["steps"] = size["subset_steps"]
        else:
            base["epochs"] = size["epochs"][b]
        grid = {"model_args.norm": list(NORMS), "batch_size": [b], "lr": size["lrs"][b]}
        runs, acc_b, best_b = sweep_best_lr(ctx, f"norm-lr-B{b}", base, grid, size["seeds"])
        acc.update(acc_b)
        best.update(best_b)
        train_loss.update(by_seed(at_best_lr(runs, keys, best_b), keys,
                                  lambda r: metric(r, "train_loss")))

    gaps = {b: diff_se(best[("nf", b)][1], best[("bn", b)][1]) for b in batches}
    d_mod = gaps[MODERATE][0]
    tiny = [b for b in batches if b <= TINY]
    much_better = {b: bool(math.isfinite(gaps[b][1]) and gaps[b][0] > max(MUCH_BETTER,
                                                                           2 * gaps[b][1]))
                   for b in tiny}
    reproduced = abs(d_mod) <= COMPARABLE and all(much_better.values())

    measurements = {
        "setup": {"depths": [1, 1, 1], "width": 0.125,
                  "epochs": {f"B{b}": size["epochs"][b] for b in batches},
                  "steps": size.get("subset_steps"), "batch_sizes": batches,
                  "lr_grids": {f"B{b}": size["lrs"][b] for b in batches},
                  "seeds": size["seeds"], "momentum": 0.9, "schedule": "cosine",
                  "dataset": "digits 1x8x8", "validation_fraction": VALIDATION,
                  "lr_chosen_on": "validation accuracy", "judged_on": "test accuracy"},
        "val_acc": {f"{n}/B{b}/lr{lr:g}": summary(v) for (n, b, lr), v in sorted(acc.items())},
        "best": {f"{n}/B{b}": {"lr": lr, **summary(v)} for (n, b), (lr, v) in best.items()},
        "train_loss_at_best_lr": {f"{n}/B{b}": summary(v)
                                  for (n, b), v in sorted(train_loss.items())},
        "nf_minus_bn": {f"B{b}": {"gap": d, "se": se} for b, (d, se) in gaps.items()},
        "comparable_at_moderate": abs(d_mod) <= COMPARABLE,
        "nf_much_better_at": {f"B{b}": v for b, v in much_better.items()},
        "best_lr_at_grid_edge": sorted(f"{n}/B{b}" for (n, b), (lr, _) in best.items()
                                       if len(size["lrs"][b]) > 1
                                       and lr in (size["lrs"][b][0], size["lrs"][b][-1])),
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
                      "digits: test acc, mean +- s.e. over seeds")
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
