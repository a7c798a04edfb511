"""confusion-width-depth: gradient confusion falls with width, rises with depth, and BN and
skip connections reduce it -- at initialization and after training.

Sankararaman, De, Xu, Huang & Goldstein (ICML 2020) (PAPERS.md section 6): the gradient
confusion bound eta (<g_i, g_j> >= -eta) grows with depth and shrinks with width; skip
connections and BatchNorm each lower it. The experiments report the minimum pairwise
cosine similarity of mini-batch gradients: the lower it is, the more confused.

Experiment (NOTE: MLPs on scikit-learn's digits instead of the paper's Wide-ResNet-style
CNNs on CIFAR, to fit a CPU budget): He-initialized ReLU MLPs -- a width sweep at the
middle depth and a depth sweep at the middle width -- and at the largest depth the
middle-width MLP with BatchNorm, with residual connections (branch scale 1/sqrt(depth))
and with both. Each is trained with SGD + momentum 0.9, batch 128, learning rate 0.01 on a
cosine schedule, through the sweep runner. Confusion is measured at initialization and on
the trained weights: the cosine similarities of the gradients of M fixed mini-batches of B
training examples (M(M-1)/2 pairs, train-mode BatchNorm on each mini-batch), summarized by
their minimum.

Design (quick): 10 seeds, because the minimum over 496 pairs is an extreme value whose
spread over seeds is large (s.d. 0.05-0.3 at initialization in a 12-seed pilot; an earlier
4-seed design had standard errors of 0.15-0.24, as large as the effects). 800 steps at
batch 128 (about 70 epochs) train the plain depth-32 MLP to a training loss of about 0.1
(the earlier 300 steps at batch 32 left it at test accuracy 0.3-0.4, so "trained" compared
trained shallow nets with barely trained deep ones); BN at depth 32 trains slowest (about
0.5). Only the width and depth sweeps the criterion and the figure use are trained (a cross,
not the full width x depth grid), which pays for the seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, ClaimResult, RunContext
from signalprop.experiments._models import ZOO
from signalprop.experiments._registry import register
from signalprop.experiments._rows import errorbar_lines
from signalprop.experiments._stats import diff_se, mean_se, separated

K = 2.0
N_BATCHES, BATCH = 32, 8  # mini-batches whose gradients are compared (496 pairs)
DATA_SEED = 1234  # which training examples form them (the same for every network)
PHASES = ("init", "trained")
CRITERION = (
    f"with the minimum pairwise cosine of {N_BATCHES} mini-batch gradients (batch {BATCH}) "
    f"as the measure (higher = less confusion), each of these exceeds {K:g} standard errors "
    "over seeds, both at initialization and after training: widest > narrowest plain MLP "
    "(middle depth); shallowest > deepest plain MLP (middle width); BN > plain and "
    "residual > plain at the largest depth"
)


def minibatch_confusion(model: Any, x: Any, y: Any, batch: int) -> Any:
    """Confusion statistics of the gradients of consecutive mini-batches of (x, y).

    The model runs in train mode (BatchNorm normalizes each mini-batch by its own
    statistics); the Gram matrix of the flattened parameter gradients is accumulated in
    float64 and summarized by ``signalprop.measure.gradients._confusion.confusion_from_gram``.
    """
    import torch
    import torch.nn.functional as F

    from signalprop.measure.gradients._confusion import confusion_from_gram

    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    grads = []
    for xb, yb in zip(x.split(batch), y.split(batch)):
        g = torch.autograd.grad(F.cross_entropy(model(xb), yb), params)
        grads.append(torch.cat([t.reshape(-1) for t in g]).double())
    stack = torch.stack(grads)  # (M, P)
    return confusion_from_gram(stack @ stack.T)


def _measure(row: dict[str, Any], x: Any, y: Any) -> dict[str, float]:
    import torch

    from signalprop.models import load_model
    from signalprop.train import load_checkpoint

    cfg = row["config"]
    torch.manual_seed(cfg["seed"])  # the trainer builds the model right after this
    model = load_model(cfg["model"], **cfg["model_args"])
    out = {"init": minibatch_confusion(model, x, y, BATCH).min_cosine}
    ckpt = Path(row["history"]).parent / "checkpoint.pt"
    if row["result"]["status"] == "completed" and ckpt.is_file():
        model.load_state_dict(load_checkpoint(ckpt)["model"])
        out["trained"] = minibatch_confusion(model, x, y, BATCH).min_cosine
    else:  # a diverged network has no trained weights to measure
        out["trained"] = float("nan")
    for metric in ("test_acc", "train_loss"):
        out[metric] = row["result"]["metrics"].get(metric, float("nan"))
    return out


def decide(c: dict[str, dict[str, list[float]]], wide: str, narrow: str, shallow: str,
           deep: str) -> dict[str, Any]:
    """The criterion from per-seed minimum cosines ``c[phase][config]``.

    Examples:
        >>> hi, lo = [0.1, 0.11, 0.12], [-0.5, -0.45, -0.4]
        >>> c = {p: {"w": hi, "n": lo, "s": hi, "d": lo, "bn": hi, "res": hi}
        ...      for p in ("init", "trained")}
        >>> decide(c, "w", "n", "s", "d")["reproduced"]
        True
    """
    checks: dict[str, Any] = {}
    for phase in PHASES:
        v = c[phase]
        for name, (a, b) in {"wider_less_confused": (wide, narrow),
                             "deeper_more_confused": (shallow, deep),
                             "bn_reduces": ("bn", deep),
                             "skip_reduces": ("res", deep)}.items():
            checks[f"{phase}:{name}"] = {"holds": separated(v[a], v[b], K),
                                         "difference": diff_se(v[a], v[b])}
    return {"checks": checks, "reproduced": all(ch["holds"] for ch in checks.values())}


def run(ctx: RunContext) -> ClaimResult:
    import torch

    from signalprop.data import load_dataset
    from signalprop.plot._style import pyplot, save

    torch.set_num_threads(1)
    widths = ctx.pick([8, 32], [16, 64, 256], [16, 64, 256, 1024])
    depths = ctx.pick([2, 4], [2, 8, 32], [2, 8, 32, 64])
    seeds = ctx.pick([0, 1], list(range(10)), list(range(16)))
    steps = ctx.pick(10, 800, 3000)
    mid_w, mid_d, deep = widths[len(widths) // 2], depths[1], depths[-1]
    base = {"model_args": {"in_features": 64, "num_classes": 10}, "dataset": "digits",
            "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 128,
            "schedule": "cosine", "steps": steps, "log_every": 50, "eval_every": steps}
    mlp = {**base, "model": f"{ZOO}:relu_mlp"}
    plain = (ctx.sweep("width", mlp, {"model_args.width": widths,
                                      "model_args.depth": [mid_d]}, seeds)
             + ctx.sweep("depth", mlp, {"model_args.width": [mid_w],
                                        "model_args.depth": [d for d in depths if d != mid_d]},
                         seeds))
    variants = {
        "bn": ctx.sweep("bn", mlp, {"model_args.width": [mid_w], "model_args.depth": [deep],
                                    "model_args.batchnorm": [True]}, seeds),
        "res": ctx.sweep("res", {**base, "model": f"{ZOO}:relu_resmlp"},
                         {"model_args.width": [mid_w], "model_args.depth": [deep]}, seeds),
        "res+bn": ctx.sweep("res-bn", {**base, "model": f"{ZOO}:relu_resmlp"},
                            {"model_args.width": [mid_w], "model_args.depth": [deep],
                             "model_args.batchnorm": [True]}, seeds),
    }
    data = load_dataset("digits").train
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(DATA_SEED))
    x, y = data.batch(pick[:N_BATCHES * BATCH])
    ctx.log(f"  measuring gradient confusion of {len(plain) + 3 * len(seeds)} networks")
    values: dict[str, dict[str, list[float]]] = {
        p: {} for p in (*PHASES, "test_acc", "train_loss")}
    for row in plain:
        a = row["config"]["model_args"]
        m = _measure(row, x, y)
        for key in values:
            values[key].setdefault(f"w{a['width']}_d{a['depth']}", []).append(m[key])
    for name, rows in variants.items():
        for row in rows:
            m = _measure(row, x, y)
            for key in values:
                values[key].setdefault(name, []).append(m[key])
    wide, narrow = f"w{widths[-1]}_d{mid_d}", f"w{widths[0]}_d{mid_d}"
    shallow, deepest = f"w{mid_w}_d{depths[0]}", f"w{mid_w}_d{deep}"
    verdict = decide({p: {**values[p], "deep": values[p][deepest]} for p in PHASES},
                     wide, narrow, shallow, "deep")

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for phase, style in zip(PHASES, ("-", "--")):
        errorbar_lines(axes[0], widths, {f"{phase}, depth {depths[1]}": [
            values[phase][f"w{w}_d{depths[1]}"] for w in widths]}, linestyle=style)
        errorbar_lines(axes[1], depths, {f"{phase}, width {mid_w}": [
            values[phase][f"w{mid_w}_d{d}"] for d in depths]}, linestyle=style)
    for ax, xlabel in zip(axes[:2], ("width", "depth")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{xlabel} (plain ReLU MLP)")
        ax.set_ylabel("min cosine of mini-batch gradients")
        ax.legend(fontsize=7)
    names = ["plain", "bn", "res", "res+bn"]
    for i, phase in enumerate(PHASES):
        stats = [mean_se(values[phase][deepest if n == "plain" else n]) for n in names]
        axes[2].bar([j + 0.4 * i for j in range(len(names))], [s[0] for s in stats], 0.4,
                    yerr=[0.0 if math.isnan(s[1]) else s[1] for s in stats], capsize=3,
                    label=phase)
    axes[2].set_xticks([j + 0.2 for j in range(len(names))], names)
    axes[2].set_title(f"depth {deep}, width {mid_w}")
    axes[2].set_ylabel("min cosine (higher = less confusion)")
    axes[2].legend(fontsize=7)
    save(fig, ctx.out / "figure.png")

    parts = []
    for key, ch in verdict["checks"].items():
        d, se = ch["difference"]
        parts.append(f"{key} {d:+.3f} +- {se:.3f}{'' if ch['holds'] else ' (fails)'}")
    held = sum(ch["holds"] for ch in verdict["checks"].values())
    effect = (f"min-cosine differences, {len(seeds)} seeds: " + "; ".join(parts)
              + f"; {held}/{len(verdict['checks'])} hold")
    return ClaimResult(
        claim=CLAIM.name, mode=ctx.mode, reproduced=bool(verdict["reproduced"]),
        effect=effect, criterion=CLAIM.criterion,
        measurements={"widths": widths, "depths": depths, "seeds": seeds, "steps": steps,
                      "min_cosine": {p: values[p] for p in PHASES},
                      "test_acc": values["test_acc"], "train_loss": values["train_loss"],
                      **verdict},
        figure="figure.png")


CLAIM = register(Claim(
    name="confusion-width-depth",
    paper="Sankararaman, De, Xu, Huang & Goldstein (ICML 2020)",
    statement="Gradient confusion, at initialization and during training, falls with width "
              "and rises with depth; BatchNorm and skip connections reduce it.",
    criterion=CRITERION,
    run=run,
    quick_minutes=4.5,
))
