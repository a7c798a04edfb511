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
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._resnet_runs import (
    CHANCE,
    accuracy,
    by_seed,
    digits_resnet,
    fmt,
    status,
    summary,
)
from signalprop.experiments._rows import errorbar_lines
from signalprop.experiments._stats import diff_se, mean_se

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


def _cell(norm: str, depth: int) -> str:
    return f"{norm}/depth{depth}"


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """Train none / skipinit / bn ResNets at each depth and seed."""
    base = {**digits_resnet([1], "bn"), "lr": LR, "batch_size": BATCH,
            "steps": size["steps"], "log_every": 10}
    grid = {"model_args.name_or_depths": [[d] for d in size["depths"]],
            "model_args.norm": list(NORMS)}
    runs = ctx.sweep("depth-norm", base, grid, size["seeds"])
    keys = ["model_args.name_or_depths", "model_args.norm"]
    acc = by_seed(runs, keys, accuracy)
    diverged = by_seed(runs, keys, lambda r: float(status(r) == "diverged"))
    depths = size["depths"]
    return {
        "setup": {"lr": LR, "batch_size": BATCH, "steps": size["steps"], "seeds": size["seeds"],
                  "depths_in_blocks": depths, "layers": [3 * d + 2 for d in depths],
                  "width": base["model_args"]["width"], "dataset": "digits 1x8x8"},
        "test_acc": {_cell(n, d): summary(acc[((d,), n)]) for d in depths for n in NORMS},
        "diverged": {_cell(n, d): [bool(x) for x in diverged[((d,), n)]]
                     for d in depths for n in NORMS},
    }


def decide(m: dict[str, Any]) -> Verdict:
    """The criterion at the deepest network, from the per-seed test accuracies.

    Examples:
        >>> acc = {"none": [0.1, 0.1], "skipinit": [0.9, 0.92], "bn": [0.95, 0.96]}
        >>> m = {"setup": {"depths_in_blocks": [32]},
        ...      "test_acc": {f"{n}/depth32": {"values": v} for n, v in acc.items()},
        ...      "diverged": {f"{n}/depth32": [n == "none"] * 2 for n in acc}}
        >>> decide(m).reproduced
        True
    """
    depths = m["setup"]["depths_in_blocks"]
    deep = depths[-1]
    acc = {n: m["test_acc"][_cell(n, deep)]["values"] for n in NORMS}
    diverged = {n: m["diverged"][_cell(n, deep)] for n in NORMS}
    none_fails = all(d or a < FAIL_ACC for d, a in zip(diverged["none"], acc["none"]))
    verdicts = {}
    for norm in ("skipinit", "bn"):
        gap, se = diff_se(acc[norm], acc["none"])
        verdicts[norm] = {"trains": bool(mean_se(acc[norm])[0] >= TRAIN_ACC),
                          "beats_none": bool(math.isfinite(se) and gap > 2 * se),
                          "gap_vs_none": gap, "gap_se": se}
    reproduced = none_fails and all(v["trains"] and v["beats_none"] for v in verdicts.values())
    shallow = fmt(*mean_se(m["test_acc"][_cell("none", depths[0])]["values"]))
    effect = (f"depth {deep} blocks ({3 * deep + 2} layers): test acc "
              + ", ".join(f"{n} {fmt(*mean_se(acc[n]))}" for n in NORMS)
              + f"; 'none' diverged in {int(sum(diverged['none']))}/{len(acc['none'])} seeds"
              + f", SkipInit in {int(sum(diverged['skipinit']))}/{len(acc['skipinit'])}"
              + f"; shallowest ({depths[0]} blocks) 'none' {shallow}")
    return Verdict(bool(reproduced), effect,
                   {"depth": deep, "none_fails_every_seed": none_fails, **verdicts})


def figure(m: dict[str, Any], path: Path) -> None:
    """Test accuracy against depth, one error-bar line per normalization."""
    from signalprop.plot._style import pyplot, save

    depths = m["setup"]["depths_in_blocks"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for norm, label in zip(NORMS, ("no norm (He init)", "SkipInit", "BatchNorm")):
        errorbar_lines(ax, m["setup"]["layers"],
                       {label: [m["test_acc"][_cell(norm, d)]["values"] for d in depths]})
    ax.axhline(CHANCE, color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("test accuracy (diverged = chance)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"digits, lr {LR}, batch {BATCH}: mean +- s.e. over seeds", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, path)


CLAIM = Claim(
    name="skipinit-depth",
    paper="De & Smith (NeurIPS 2020)",
    statement=("Unnormalized pre-activation ResNets fail to train at large depth at the "
               "learning rate BatchNorm uses, while SkipInit and BatchNorm train."),
    criterion=CRITERION,
    quick_minutes=4.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
