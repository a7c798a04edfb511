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

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._models import ZOO
from signalprop.experiments._rows import errorbar_lines
from signalprop.experiments._stats import diff_se, mean_se, separated

K = 2.0
N_BATCHES, BATCH = 32, 8  # mini-batches whose gradients are compared (496 pairs)
DATA_SEED = 1234  # which training examples form them (the same for every network)
PHASES = ("init", "trained")
# plain MLPs: a width sweep at the middle depth (depths[1]) and a depth sweep at the middle
# width; the variants (BN, residual, both) at the largest depth and the middle width
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"widths": [8, 32], "depths": [2, 4], "seeds": [0, 1], "steps": 10},
    "quick": {"widths": [16, 64, 256], "depths": [2, 8, 32], "seeds": list(range(10)),
              "steps": 800},
    "full": {"device": "auto", "widths": [16, 64, 256, 1024], "depths": [2, 8, 32, 64],
             "seeds": list(range(16)), "steps": 3000},
}
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


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """Train the width sweep, the depth sweep and the deep variants; measure their confusion
    at initialization and after training."""
    import torch

    from signalprop.data import load_dataset

    torch.set_num_threads(1)
    widths, depths, seeds, steps = size["widths"], size["depths"], size["seeds"], size["steps"]
    mid_w, mid_d, deep = _middle(widths), depths[1], depths[-1]
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
    named = [(_plain(r["config"]["model_args"]["width"], r["config"]["model_args"]["depth"]),
              r) for r in plain]
    named += [(name, r) for name, rows in variants.items() for r in rows]
    for name, row in named:
        m = _measure(row, x, y)
        for key in values:
            values[key].setdefault(name, []).append(m[key])
    return {"widths": widths, "depths": depths, "seeds": seeds, "steps": steps,
            "min_cosine": {p: values[p] for p in PHASES},
            "test_acc": values["test_acc"], "train_loss": values["train_loss"]}


def _middle(widths: list[int]) -> int:
    return widths[len(widths) // 2]


def _plain(width: int, depth: int) -> str:
    return f"w{width}_d{depth}"


def decide(m: dict[str, Any]) -> Verdict:
    """The eight comparisons of per-seed minimum cosines ``min_cosine[phase][network]``.

    Examples:
        >>> hi, lo = [0.1, 0.11, 0.12], [-0.5, -0.45, -0.4]
        >>> c = {"w64_d2": hi, "w16_d2": lo, "w32_d1": hi, "w32_d4": lo, "bn": hi, "res": hi}
        >>> m = {"widths": [16, 32, 64], "depths": [1, 2, 4], "seeds": [0, 1, 2],
        ...      "min_cosine": {"init": c, "trained": c}}
        >>> decide(m).reproduced
        True
    """
    widths, depths = m["widths"], m["depths"]
    mid_w = _middle(widths)
    deep = _plain(mid_w, depths[-1])
    pairs = {"wider_less_confused": (_plain(widths[-1], depths[1]), _plain(widths[0], depths[1])),
             "deeper_more_confused": (_plain(mid_w, depths[0]), deep),
             "bn_reduces": ("bn", deep),
             "skip_reduces": ("res", deep)}
    checks: dict[str, Any] = {}
    for phase in PHASES:
        v = m["min_cosine"][phase]
        for name, (a, b) in pairs.items():
            checks[f"{phase}:{name}"] = {"holds": separated(v[a], v[b], K),
                                         "difference": diff_se(v[a], v[b])}
    parts = []
    for key, ch in checks.items():
        d, se = ch["difference"]
        parts.append(f"{key} {d:+.3f} +- {se:.3f}{'' if ch['holds'] else ' (fails)'}")
    held = sum(ch["holds"] for ch in checks.values())
    effect = (f"min-cosine differences, {len(m['seeds'])} seeds: " + "; ".join(parts)
              + f"; {held}/{len(checks)} hold")
    return Verdict(held == len(checks), effect, {"checks": checks})


def figure(m: dict[str, Any], path: Path) -> None:
    """Minimum cosine against width and depth, and the deep variants as bars."""
    from signalprop.plot._style import pyplot, save

    widths, depths, values = m["widths"], m["depths"], m["min_cosine"]
    mid_w, deep = _middle(widths), depths[-1]
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for phase, style in zip(PHASES, ("-", "--")):
        errorbar_lines(axes[0], widths, {f"{phase}, depth {depths[1]}": [
            values[phase][_plain(w, depths[1])] for w in widths]}, linestyle=style)
        errorbar_lines(axes[1], depths, {f"{phase}, width {mid_w}": [
            values[phase][_plain(mid_w, d)] for d in depths]}, linestyle=style)
    for ax, xlabel in zip(axes[:2], ("width", "depth")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{xlabel} (plain ReLU MLP)")
        ax.set_ylabel("min cosine of mini-batch gradients")
        ax.legend(fontsize=7)
    names = ["plain", "bn", "res", "res+bn"]
    for i, phase in enumerate(PHASES):
        stats = [mean_se(values[phase][_plain(mid_w, deep) if n == "plain" else n])
                 for n in names]
        axes[2].bar([j + 0.4 * i for j in range(len(names))], [s[0] for s in stats], 0.4,
                    yerr=[0.0 if math.isnan(s[1]) else s[1] for s in stats], capsize=3,
                    label=phase)
    axes[2].set_xticks([j + 0.2 for j in range(len(names))], names)
    axes[2].set_title(f"depth {deep}, width {mid_w}")
    axes[2].set_ylabel("min cosine (higher = less confusion)")
    axes[2].legend(fontsize=7)
    save(fig, path)


CLAIM = Claim(
    name="confusion-width-depth",
    paper="Sankararaman, De, Xu, Huang & Goldstein (ICML 2020)",
    statement="Gradient confusion, at initialization and during training, falls with width "
              "and rises with depth; BatchNorm and skip connections reduce it.",
    criterion=CRITERION,
    quick_minutes=4.5,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
