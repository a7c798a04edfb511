"""skipinit-depth (De & Smith, NeurIPS 2020): without normalization, a deep pre-activation
ResNet with He init fails to train at the learning rate BatchNorm uses; SkipInit (a
zero-initialized scalar on every residual branch) and BatchNorm train it.

Setup: ResNetV2 (CIFAR stem, one stage of bottleneck blocks, width 0.125) on 1x8x8
digits; SGD with momentum 0.9, learning rate 0.1 (BatchNorm's usual rate at batch 64),
cosine decay, batch 64. Depths are bottleneck blocks per network (3 convolutions each).
Without normalization the signal variance doubles per block (~2^depth, PAPERS.md §2), so
the deepest network's logits and gradients explode.
"""

from __future__ import annotations

import math
from typing import Any

from signalprop.experiments._claim import Claim, ClaimResult, RunContext
from signalprop.experiments._registry import register
from signalprop.experiments._rows import errorbar_lines
from signalprop.experiments._stats import diff_se, mean_se
from signalprop.experiments.claims._resnet_runs import (
    CHANCE,
    accuracy,
    by_seed,
    digits_resnet,
    fmt,
    status,
    summary,
)

NAME = "skipinit-depth"
NORMS = ("none", "skipinit", "bn")
LR = 0.1
BATCH = 64
FAIL_ACC = 0.2  # "near chance": below twice the chance accuracy of 0.1
TRAIN_ACC = 0.8  # "trains": mean test accuracy at least this
CRITERION = (f"at the deepest network, lr {LR}, batch {BATCH}: every 'none' run fails "
             f"(diverges or ends below {FAIL_ACC} test accuracy; chance {CHANCE}), while "
             f"BN and SkipInit each reach mean test accuracy >= {TRAIN_ACC} and beat 'none' "
             "by more than 2 standard errors (a diverged run scores chance)")

# blocks per network, seeds, training steps
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"depths": [1, 4], "seeds": [0], "steps": 8},
    "quick": {"depths": [2, 8, 32], "seeds": [0, 1, 2], "steps": 300},
    "full": {"depths": [2, 8, 32, 100], "seeds": [0, 1, 2, 3, 4], "steps": 2000},
}


def run(ctx: RunContext) -> ClaimResult:
    """Train none / skipinit / bn ResNets at each depth and seed; judge the deepest."""
    size = SIZES[ctx.mode]
    base = {**digits_resnet([1], "bn"), "lr": LR, "batch_size": BATCH,
            "steps": size["steps"], "log_every": 10}
    grid = {"model_args.name_or_depths": [[d] for d in size["depths"]],
            "model_args.norm": list(NORMS)}
    runs = ctx.sweep("depth-norm", base, grid, size["seeds"])
    keys = ["model_args.name_or_depths", "model_args.norm"]
    acc = by_seed(runs, keys, accuracy)
    diverged = by_seed(runs, keys, lambda r: float(status(r) == "diverged"))

    depths = size["depths"]
    deep = (depths[-1],)
    none, skip, bn = (acc[(deep, n)] for n in NORMS)
    none_fails = all(d or a < FAIL_ACC for d, a in zip(diverged[(deep, "none")], none))
    verdicts = {}
    for norm, values in (("skipinit", skip), ("bn", bn)):
        gap, se = diff_se(values, none)
        verdicts[norm] = {"trains": bool(mean_se(values)[0] >= TRAIN_ACC),
                          "beats_none": bool(math.isfinite(se) and gap > 2 * se),
                          "gap_vs_none": gap, "gap_se": se}
    reproduced = none_fails and all(v["trains"] and v["beats_none"] for v in verdicts.values())

    measurements = {
        "setup": {"lr": LR, "batch_size": BATCH, "steps": size["steps"], "seeds": size["seeds"],
                  "depths_in_blocks": depths, "layers": [3 * d + 2 for d in depths],
                  "width": base["model_args"]["width"], "dataset": "digits 1x8x8"},
        "test_acc": {f"{norm}/depth{d}": summary(acc[((d,), norm)])
                     for d in depths for norm in NORMS},
        "diverged": {f"{norm}/depth{d}": [bool(x) for x in diverged[((d,), norm)]]
                     for d in depths for norm in NORMS},
        "deepest": {"depth": depths[-1], "none_fails_every_seed": none_fails, **verdicts},
    }
    shallow = fmt(*mean_se(acc[((depths[0],), "none")]))
    effect = (f"depth {depths[-1]} blocks ({3 * depths[-1] + 2} layers): test acc "
              + ", ".join(f"{n} {fmt(*mean_se(acc[(deep, n)]))}" for n in NORMS)
              + f"; 'none' diverged in {int(sum(diverged[(deep, 'none')]))}/{len(none)} seeds"
              + f", SkipInit in {int(sum(diverged[(deep, 'skipinit')]))}/{len(skip)}"
              + f"; shallowest ({depths[0]} blocks) 'none' {shallow}")
    _figure(ctx, depths, acc)
    return ClaimResult(NAME, ctx.mode, reproduced, effect, CRITERION, measurements, "figure.png")


def _figure(ctx: RunContext, depths: list[int], acc: dict[tuple, list[float]]) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    layers = [3 * d + 2 for d in depths]
    for norm, label in zip(NORMS, ("no norm (He init)", "SkipInit", "BatchNorm")):
        errorbar_lines(ax, layers, {label: [acc[((d,), norm)] for d in depths]})
    ax.axhline(CHANCE, color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("test accuracy (diverged = chance)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"digits, lr {LR}, batch {BATCH}: mean +- s.e. over seeds", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, ctx.out / "figure.png")


CLAIM = register(Claim(
    name=NAME,
    paper="De & Smith (NeurIPS 2020)",
    statement=("Unnormalized pre-activation ResNets fail to train at large depth at the "
               "learning rate BatchNorm uses, while SkipInit and BatchNorm train."),
    criterion=CRITERION,
    run=run,
    quick_minutes=4.0,
))
