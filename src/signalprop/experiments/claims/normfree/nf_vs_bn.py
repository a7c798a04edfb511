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
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._resnet_runs import (
    LR_SEARCH_SETUP,
    VALIDATION,
    accuracy_vs_batch,
    digits_resnet,
    fmt,
    lr_search,
)
from signalprop.experiments._stats import diff_se, mean_se

NORMS = ("bn", "nf")
MODERATE = 64
TINY = 4  # the judged batch sizes are those <= TINY
COMPARABLE = 0.02  # |NF - BN| below 2 accuracy points
MUCH_BETTER = 0.05  # NF ahead by at least 5 accuracy points
CRITERION = (f"at batch {MODERATE} the mean NF - BN test accuracy (each at its best "
             f"learning rate) lies within +-{COMPARABLE}; at every batch size <= {TINY} "
             f"NF - BN exceeds both {MUCH_BETTER} and 2 standard errors")

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


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """Train bn / nf at every (batch, lr, seed); pick each (norm, batch)'s lr on validation."""
    batches = size["batches"]

    def base(b: int) -> dict[str, Any]:  # each batch size has its own epochs
        cfg = {**digits_resnet([1, 1, 1], "bn", validation=VALIDATION), "log_every": 20}
        if "subset_steps" in size:  # smoke: a fixed handful of steps, not whole epochs
            cfg["steps"] = size["subset_steps"]
        else:
            cfg["epochs"] = size["epochs"][b]
        return cfg

    search = lr_search(ctx, "norm-lr", batches, base,
                       lambda b: {"model_args.norm": list(NORMS), "batch_size": [b],
                                  "lr": size["lrs"][b]}, size["seeds"])
    return {
        "setup": {"depths": [1, 1, 1], "width": 0.125,
                  "epochs": {f"B{b}": size["epochs"][b] for b in batches},
                  "steps": size.get("subset_steps"), "batch_sizes": batches,
                  "lr_grids": {f"B{b}": size["lrs"][b] for b in batches},
                  "seeds": size["seeds"], **LR_SEARCH_SETUP},
        **search,
    }


def decide(m: dict[str, Any]) -> Verdict:
    """NF - BN within +-COMPARABLE at MODERATE, above MUCH_BETTER and 2 s.e. at <= TINY.

    Examples:
        >>> acc = {"bn/B4": [0.80, 0.82, 0.81], "nf/B4": [0.95, 0.96, 0.95],
        ...        "bn/B64": [0.97, 0.96, 0.97], "nf/B64": [0.96, 0.97, 0.96]}
        >>> m = {"setup": {"batch_sizes": [4, 64]},
        ...      "best": {k: {"values": v} for k, v in acc.items()}}
        >>> decide(m).reproduced
        True
    """
    batches = m["setup"]["batch_sizes"]
    nf = {b: m["best"][f"nf/B{b}"]["values"] for b in batches}
    bn = {b: m["best"][f"bn/B{b}"]["values"] for b in batches}
    gaps = {b: diff_se(nf[b], bn[b]) for b in batches}
    d_mod = gaps[MODERATE][0]
    tiny = [b for b in batches if b <= TINY]
    much_better = {b: bool(math.isfinite(gaps[b][1]) and gaps[b][0] > max(MUCH_BETTER,
                                                                           2 * gaps[b][1]))
                   for b in tiny}
    reproduced = abs(d_mod) <= COMPARABLE and all(much_better.values())
    effect = "; ".join(f"NF - BN acc at B={b}: {fmt(*gaps[b])} (NF {fmt(*mean_se(nf[b]))}, "
                       f"BN {fmt(*mean_se(bn[b]))})" for b in batches)
    details = {"nf_minus_bn": {f"B{b}": {"gap": d, "se": se} for b, (d, se) in gaps.items()},
               "comparable_at_moderate": abs(d_mod) <= COMPARABLE,
               "nf_much_better_at": {f"B{b}": v for b, v in much_better.items()}}
    return Verdict(bool(reproduced), effect, details)


def figure(m: dict[str, Any], path: Path) -> None:
    """Test accuracy at the best lr against batch size, BN and NF."""
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    accuracy_vs_batch(ax, m["setup"]["batch_sizes"], m["best"],
                      {"bn": "BatchNorm", "nf": "NF-ResNet (Scaled WS)"},
                      "digits: test acc, mean +- s.e. over seeds")
    ax.set_ylim(0, 1.02)
    save(fig, path)


CLAIM = Claim(
    name="nf-vs-bn",
    paper="Brock, De & Smith (ICLR 2021)",
    statement=("NF-ResNets and BatchNorm ResNets reach comparable test accuracy at a "
               "moderate batch size; NF-ResNets are much better at batch size 2-4."),
    criterion=CRITERION,
    quick_minutes=4.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
