"""phydi-depth (Mancanelli, Grassucci, Uncini & Comminiello, MLSP 2023, arXiv 2310.07612):
initializing every residual block of a parameterized hypercomplex (PH) ResNet as the
identity (PHYDI: a learnable scalar at 0 on each branch) makes its convergence robust to
depth (PH-ResNets from 18 to 152 layers) and reaches a given loss in fewer iterations.

Setup: ``signalprop.models.ph_resnet1d`` (n = 4 PH convolutions, variance-correct He
init, width 16) on MNIST-1D, with and without PHYDI, SGD with momentum 0.9, batch 128,
constant lr. NOTE: the paper's PH-ResNets keep BatchNorm; these have no normalization,
the regime where the identity initialization is what keeps depth trainable (without it
the signal's second moment doubles per block, ``signalprop.theory.ph_resnet_schedule``).

Measured per (method, depth, lr, seed): the first logged step (every 10 steps, the mean
training loss of the last 10 batches) at which the training loss is <= LOSS_THRESHOLD;
a diverged run or one that never gets there has not reached it (infinite steps). Each
method is judged at its best lr of the grid (fewest mean steps; on training loss only, so
the test split chooses nothing).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._stats import mean_se

LOSS_THRESHOLD = 1.0  # MNIST-1D training loss (chance: ln 10 = 2.30)
SLOWER = 1.5  # "slows down markedly": at least this many times the steps
METHODS = ("phydi", "none")
CRITERION = (f"steps to a training loss <= {LOSS_THRESHOLD:g} (each method at its best lr "
             f"of the grid): with PHYDI every seed of every depth reaches it; at every depth "
             f"PHYDI's mean is not above the plain PH ResNet's by more than 2 standard "
             f"errors; at the deepest, the plain runs' mean (a run that never reaches it counts "
             f"as twice the step budget) is >= {SLOWER:g}x PHYDI's and larger by more than 2 "
             "standard errors")

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"depths": [1, 3], "seeds": [0], "steps": 20, "lrs": [0.05], "width": 8},
    "quick": {"depths": [4, 16, 32], "seeds": [0, 1, 2], "steps": 300, "lrs": [0.01, 0.05],
              "width": 16},
    "full": {"depths": [4, 16, 48, 96], "seeds": [0, 1, 2, 3, 4], "steps": 1000,
             "lrs": [0.005, 0.01, 0.05, 0.1], "width": 32, "device": "auto"},
}


def steps_to_threshold(history: str | Path) -> float:
    """The first logged step whose training loss is <= LOSS_THRESHOLD (inf if none).

    Examples:
        >>> import json, tempfile
        >>> p = Path(tempfile.mkdtemp()) / "metrics.jsonl"
        >>> recs = [{"step": s, "split": "train", "loss": v} for s, v in ((10, 2.0), (20, 0.9))]
        >>> _ = p.write_text("".join(json.dumps(r) + chr(10) for r in recs))
        >>> steps_to_threshold(p)
        20.0
    """
    from signalprop.train import read_metrics

    for rec in read_metrics(history):
        loss = rec.get("loss")
        if rec.get("split") == "train" and loss is not None and math.isfinite(loss) \
                and loss <= LOSS_THRESHOLD:
            return float(rec["step"])
    return math.inf


def _cell(method: str, depth: int) -> str:
    return f"{method}/depth{depth}"


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """Train both methods at every depth, lr and seed; steps to the threshold."""
    base = {"model": "ph_resnet1d", "model_args": {"width": size["width"], "n": 4},
            "dataset": "mnist1d", "optimizer": "sgd", "momentum": 0.9, "batch_size": 128,
            "steps": size["steps"], "log_every": 10, "eval_every": size["steps"]}
    grid = {"model_args.depth": size["depths"], "model_args.phydi": [True, False],
            "lr": size["lrs"]}
    runs = ctx.sweep("phydi-depth", base, grid, size["seeds"])
    cells: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        cfg = run["config"]
        method = "phydi" if cfg["model_args"]["phydi"] else "none"
        key = _cell(method, cfg["model_args"]["depth"])
        steps = steps_to_threshold(run["history"])
        cells.setdefault(key, {}).setdefault(f"{cfg['lr']:g}", []).append(steps)
    return {"setup": {"depths": size["depths"], "seeds": size["seeds"], "lrs": size["lrs"],
                      "steps": size["steps"], "width": size["width"], "n": 4,
                      "loss_threshold": LOSS_THRESHOLD, "dataset": "mnist1d"},
            "steps_to_threshold": cells}


def _best(per_lr: dict[str, list[float]]) -> tuple[str, list[float]]:
    """The lr with the fewest mean steps (inf counts as never; ties: the first)."""
    def mean(v: list[float]) -> float:
        return math.inf if any(math.isinf(s) for s in v) else sum(v) / len(v)
    lr = min(per_lr, key=lambda k: mean(per_lr[k]))
    return lr, per_lr[lr]


def _slower(a: list[float], b: list[float], ratio: float, budget: int) -> bool:
    """Whether runs ``a`` are markedly slower than runs ``b``: with a run that never reached
    the threshold counted as 2 x the step budget, mean(a) >= ratio * mean(b) and the
    difference exceeds 2 standard errors (a single seed: any positive difference)."""
    def censored(v: list[float]) -> list[float]:
        return [2.0 * budget if math.isinf(s) else s for s in v]

    (ma, sa), (mb, sb) = mean_se(censored(a)), mean_se(censored(b))
    se = math.sqrt((0.0 if math.isnan(sa) else sa) ** 2 + (0.0 if math.isnan(sb) else sb) ** 2)
    return ma >= ratio * mb and ma - mb > 2 * se


def decide(m: dict[str, Any]) -> Verdict:
    """The criterion from the steps-to-threshold table.

    Examples:
        >>> cells = {"phydi/depth4": {"0.05": [60.0, 70.0]}, "none/depth4": {"0.05": [90.0, 80.0]},
        ...          "phydi/depth48": {"0.05": [50.0, 60.0]},
        ...          "none/depth48": {"0.05": [float("inf")] * 2}}
        >>> m = {"setup": {"depths": [4, 48], "steps": 300}, "steps_to_threshold": cells}
        >>> decide(m).reproduced
        True
    """
    depths, budget = m["setup"]["depths"], m["setup"]["steps"]
    table = m["steps_to_threshold"]
    best = {(meth, d): _best(table[_cell(meth, d)]) for meth in METHODS for d in depths}
    phydi_reaches = all(not math.isinf(s) for d in depths for s in best["phydi", d][1])
    not_slower = {}
    for d in depths:
        p, n = best["phydi", d][1], best["none", d][1]
        not_slower[str(d)] = not _slower(p, n, 1.0, budget)
    deep = depths[-1]
    deep_slow = _slower(best["none", deep][1], best["phydi", deep][1], SLOWER, budget)
    reproduced = phydi_reaches and all(not_slower.values()) and deep_slow

    def fmt(v: list[float]) -> str:
        reached = [s for s in v if not math.isinf(s)]
        mean = f"{sum(reached) / len(reached):.0f}" if reached else "-"
        return f"{mean} steps ({len(reached)}/{len(v)} reached)"

    effect = "; ".join(f"{d} blocks: PHYDI {fmt(best['phydi', d][1])} at lr "
                       f"{best['phydi', d][0]}, plain {fmt(best['none', d][1])} at lr "
                       f"{best['none', d][0]}" for d in depths)
    return Verdict(bool(reproduced), effect,
                   {"phydi_reaches_everywhere": phydi_reaches, "phydi_not_slower": not_slower,
                    "plain_markedly_slower_at_deepest": deep_slow,
                    "best_lr": {f"{k[0]}/depth{k[1]}": v[0] for k, v in best.items()}})


def figure(m: dict[str, Any], path: Path) -> None:
    """Steps to the loss threshold against depth (each method at its best lr)."""
    from signalprop.plot._style import pyplot, save

    depths = m["setup"]["depths"]
    budget = max(m["setup"].get("steps", 1), 1)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for meth, label, color in (("phydi", "PHYDI (scalar 0 on every branch)", "C0"),
                               ("none", "plain PH ResNet", "C3")):
        for d in depths:
            vals = _best(m["steps_to_threshold"][_cell(meth, d)])[1]
            shown = [min(v, 1.5 * budget) for v in vals]
            ax.scatter([d] * len(vals), shown, color=color, alpha=0.7,
                       label=label if d == depths[0] else None)
    ax.axhline(budget, color="grey", ls=":", lw=1)
    ax.text(depths[0], 1.52 * budget, "never reached (diverged or too slow)", fontsize=7,
            va="bottom")
    ax.set_xscale("log")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    ax.set_xlabel("residual blocks (2 PH convs each)")
    ax.set_ylabel(f"steps to training loss <= {LOSS_THRESHOLD:g}")
    ax.set_title("PH ResNets (n = 4, no normalization) on MNIST-1D", fontsize=9)
    ax.legend(fontsize=8)
    save(fig, path)


CLAIM = Claim(
    name="phydi-depth",
    paper="Mancanelli, Grassucci, Uncini & Comminiello (MLSP 2023)",
    statement=("Initializing every block of a parameterized hypercomplex ResNet as the "
               "identity (PHYDI) makes it train at every depth and reach a given loss in "
               "fewer steps; without it the deepest networks fail or slow down markedly."),
    criterion=CRITERION,
    quick_minutes=7.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
