"""depth-dp: dropping activations merges the convolutions around them into an exactly
equivalent shallower network; two-stage dynamic programming picks the plan exactly; under
a measured latency budget the compressed network runs faster on this CPU and, after a
short fine-tune, is about as accurate.

Kim, Jeong, Lee & Song, "Efficient Latency-Aware CNN Depth Compression via Two-Stage
Dynamic Programming" (ICML 2023; PAPERS.md section 14): replacing chosen activations by the
identity lets consecutive convolutions merge into one (kernels k1 + k2 - 1, strides
multiply); which to replace, under a latency budget from measured tables, is a subset
selection whose surrogate (summed block importances) two-stage DP solves exactly;
MobileNetV2-1.0 on ImageNet runs 1.41x faster under TensorRT at +0.11 points after
fine-tuning, VGG19 1.44x.

Experiment: a MobileNetV2-style network (:func:`signalprop.models.mobilenetv2`, ReLU6,
circular padding so that every stride-1 merge is exact on the whole image) trained on
scikit-learn digits (8x8, Adam); :func:`signalprop.convert.depth_compress` at a budget of
BUDGET x the original's CPU latency (one thread, batch BATCH, every convolution with its
BatchNorm folded: the fair baseline, as TensorRT folds BatchNorm too), importance = minus
the validation loss with a block's activations replaced (NOTE: the paper fine-tunes
briefly per block; here the network is scored as it is); the network with the plan's
activations replaced is fine-tuned on the train split (as the paper does, padding fixed,
then merged). (a) the merged network against the fine-tuned linearized one in float64;
(b) the DP against exhaustive search on random latency/importance tables; (c) the merged
network's latency measured beside the original (interleaved rounds, CPU time, median
per-round ratio) and its test accuracy against the original's.
"""

from __future__ import annotations

import copy
import math
import random
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from signalprop.experiments._claim import Claim, RunContext, Verdict

BUDGET = 0.7  # latency budget, fraction of the original's
LATENCY_TOL = 0.15  # the median measured ratio may exceed the budget by this fraction
ACC_MARGIN = 2.0  # percentage points: mean test accuracy drop over seeds at most this
EXACT_TOL = 1e-9  # float64: max |merged - linearized| / max |linearized|
BATCH = 64  # the batch the latency is measured (and the plan made) for
# Adam, cosine decay: validation accuracy after 30 epochs in a pilot (seeds 0, 1) was
# 96.2 / 95.8 % at 1e-3, 97.2 / 96.5 % at 3e-3 and 97.6 / 98.3 % at 1e-2.
LR = 1e-2
# Fine-tuning the linearized network, 5 epochs: validation accuracy in a pilot (seeds 0, 1;
# 20 training epochs) was 96.2 / 97.6 % at 1e-3 and 97.2 / 97.6 % at 3e-3.
FT_LR = 3e-3

CRITERION = (
    f"(a) every seed's merged network equals its fine-tuned linearized network (activations "
    f"replaced by identities) to a relative max error <= {EXACT_TOL:g} in float64; (b) the "
    f"DP's optimum (importance and cost) equals exhaustive search on every random table; "
    f"(c) at a budget of {BUDGET:g}x the original's measured CPU latency, the median over "
    f"seeds of the compressed/original latency ratio (measured side by side, median over "
    f"interleaved rounds) is <= {BUDGET:g} x {1 + LATENCY_TOL:g}, and the mean test "
    f"accuracy drop after fine-tuning is <= {ACC_MARGIN:g} points"
)

SMALL = {"stages": [[1, 16, 1, 1], [4, 24, 2, 2], [4, 32, 2, 2]], "stem": 16, "head": 64}
SIZES = {
    "smoke": {"seeds": 1, "epochs": 1, "finetune": 1, "repeats": 3, "tables": 6,
              "table_convs": 5, "net": {"stages": [[1, 8, 1, 1], [2, 8, 2, 2]], "stem": 8,
                                        "head": 16}},
    "quick": {"seeds": 3, "epochs": 20, "finetune": 5, "repeats": 21, "tables": 100,
              "table_convs": 7, "net": SMALL},
    "full": {"seeds": 8, "epochs": 40, "finetune": 10, "repeats": 41, "tables": 300,
             "table_convs": 8, "net": SMALL},
}


def _data() -> dict[str, Any]:
    from signalprop.data import load_digits

    val = load_digits(seed=0, as_image=True, validation_fraction=0.2, holdout="validation")
    test = load_digits(seed=0, as_image=True, validation_fraction=0.2, holdout="test")
    (xtr, ytr), (xva, yva), (xte, yte) = (val.train.tensors(), val.test.tensors(),
                                          test.test.tensors())
    return {"train": (xtr, ytr), "val": (xva, yva), "test": (xte, yte)}


def _network(net: dict[str, Any]) -> Any:
    from signalprop.models import mobilenetv2

    return mobilenetv2([tuple(s) for s in net["stages"]], in_channels=1, num_classes=10,
                       stem=net["stem"], head=net["head"], padding_mode="circular")


def _exactness(plan: Any, linear: Any, x: Any) -> float:
    """max |merged - linearized| / max |linearized| in float64."""
    import torch

    lin64 = copy.deepcopy(linear).double().eval()
    with torch.no_grad():
        ref = lin64(x.double())
        return float((plan.apply(lin64)(x.double()) - ref).abs().max() / ref.abs().max())


def _view(plan: Any, nets: dict[str, Any], x: Any) -> dict[str, Any]:
    """Channel variance at each convolution output (at its depth in the original) and the
    input-output Jacobian's singular values, per network."""
    import torch.nn as nn

    from signalprop.measure import jacobian_spectrum, spp

    out = {}
    for name, net in nets.items():
        convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
        depths = list(range(1, len(convs) + 1)) if len(convs) == len(plan.convs) else \
            list(np.cumsum([len(s) for s in plan.segments]).tolist())
        res = spp(net, x, blocks=convs)
        jac = jacobian_spectrum(net, x[:16], k=10)
        out[name] = {"depth": depths, "avg_var": [r.avg_var for r in res.records],
                     "top_sv": np.mean(jac.top, axis=0).tolist(),
                     "mean_sq_sv": float(np.mean(jac.mean_sq_sv))}
    return out


def _seed(ctx: RunContext, size: dict[str, Any], seed: int, data: dict[str, Any]
          ) -> dict[str, Any]:
    import torch

    from signalprop.convert import depth_compress, measure_plan
    from signalprop.experiments.claims.compression._train import accuracy, neg_loss, train

    (xtr, ytr), (xva, yva), (xte, yte) = data["train"], data["val"], data["test"]
    torch.manual_seed(seed)
    net = train(_network(size["net"]), xtr, ytr, epochs=size["epochs"], lr=LR, seed=seed)
    x_lat = xte[:BATCH]
    plan = depth_compress(net, BUDGET, example_input=x_lat,
                          importance=lambda m: neg_loss(m, xva, yva), repeats=size["repeats"],
                          cache_dir=ctx.out / "latency-cache", verify=False,
                          label=f"seed {seed}")
    linear = plan.apply(net, merge=False)
    acc_linear = accuracy(linear, xte, yte)
    train(linear, xtr, ytr, epochs=size["finetune"], lr=FT_LR, seed=seed + 1000)
    small = plan.apply(linear)
    measure_plan(plan, net, x_lat, repeats=size["repeats"])
    row = {"seed": seed, "acc_original": accuracy(net, xte, yte),
           "acc_linear_before": acc_linear, "acc_compressed": accuracy(small, xte, yte),
           "exact_error": _exactness(plan, linear, xte),
           "predicted_ratio": plan.predicted_ratio, "measured_ratio": plan.measured_ratio,
           "convs": len(plan.convs), "merged_depth": plan.merged_depth,
           "dropped": len(plan.dropped), "segments": plan.segments,
           "importance": plan.importance, "original_seconds": plan.table.original}
    if seed == 0:  # the signal-propagation view, BatchNorm folded everywhere
        nets = {"original": plan.baseline().apply(net), "linearized": plan.apply(net),
                "compressed": small}
        row["view"] = _view(plan, nets, xte[:BATCH])
    ctx.log(f"  seed {seed}: accuracy {row['acc_original']:.1f} -> {row['acc_compressed']:.1f}"
            f" %, latency predicted {row['predicted_ratio']:.3f}x measured "
            f"{row['measured_ratio']:.3f}x, {row['convs']} -> {row['merged_depth']} convs, "
            f"error {row['exact_error']:.1e}")
    return row


def _dp_vs_brute(size: dict[str, Any]) -> list[dict[str, Any]]:
    from signalprop.convert.compress._dp import solve
    from signalprop.experiments.claims.compression._brute import brute_force, random_tables

    rows = []
    for t in range(size["tables"]):
        rng = random.Random(t)
        n = rng.randint(2, size["table_convs"])
        seg, act, imp, drop, forced = random_tables(rng, n)
        total = float(seg[np.isfinite(seg)].sum() + act.sum())
        budget = rng.randint(1, int(total) + 1)
        sol = solve(seg, act, imp, float(budget), droppable=drop, forced=forced,
                    resolution=budget)  # one unit a second: no rounding
        ref = brute_force(seg, act, imp, drop, forced, budget)
        rows.append({"convs": n, "dp": None if sol is None else [sol.importance,
                                                                 float(sol.cost_units)],
                     "brute": None if ref is None else list(ref)})
    return rows


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    data = _data()
    seeds = [_seed(ctx, size, s, data) for s in range(size["seeds"])]
    tables = _dp_vs_brute(size)
    return {"seeds": seeds, "tables": tables, "budget": BUDGET, "batch": BATCH,
            "size": size}


def _mismatches(tables: list[dict[str, Any]]) -> int:
    bad = 0
    for t in tables:
        dp, brute = t["dp"], t["brute"]
        if (dp is None) != (brute is None):
            bad += 1
        elif dp is not None and (abs(dp[0] - brute[0]) > 1e-9 or dp[1] != brute[1]):
            bad += 1
    return bad


def decide(m: dict[str, Any]) -> Verdict:
    """Apply the criterion to the per-seed rows and the DP/brute-force tables.

    Examples:
        >>> row = {"acc_original": 97.0, "acc_compressed": 96.5, "exact_error": 1e-14,
        ...        "measured_ratio": 0.62, "predicted_ratio": 0.68}
        >>> tables = [{"dp": [-1.0, 3.0], "brute": [-1.0, 3.0]}, {"dp": None, "brute": None}]
        >>> decide({"seeds": [row], "tables": tables}).reproduced
        True
        >>> decide({"seeds": [dict(row, measured_ratio=0.97)], "tables": tables}).reproduced
        False
    """
    seeds = m["seeds"]
    worst = max(r["exact_error"] for r in seeds)
    bad = _mismatches(m["tables"])
    ratio = statistics.median(r["measured_ratio"] for r in seeds)
    predicted = statistics.median(r["predicted_ratio"] for r in seeds)
    drop = statistics.fmean(r["acc_original"] - r["acc_compressed"] for r in seeds)
    a = math.isfinite(worst) and worst <= EXACT_TOL
    b = bool(m["tables"]) and bad == 0
    c_lat = ratio <= BUDGET * (1 + LATENCY_TOL)
    c_acc = drop <= ACC_MARGIN
    flag = {True: "", False: " (FAILS)"}
    effect = (f"{len(seeds)} seed(s): merged vs linearized max error {worst:.1e}{flag[a]}; "
              f"DP = brute force on {len(m['tables']) - bad}/{len(m['tables'])} tables"
              f"{flag[b]}; latency {ratio:.3f}x of the original (predicted {predicted:.3f}x, "
              f"budget {BUDGET:g}x){flag[c_lat]}; accuracy drop {drop:+.2f} points"
              f"{flag[c_acc]}")
    return Verdict(bool(a and b and c_lat and c_acc), effect,
                   {"max_exact_error": worst, "exact": a, "dp_mismatches": bad,
                    "dp_exact": b, "median_measured_ratio": ratio,
                    "median_predicted_ratio": predicted, "latency_ok": c_lat,
                    "mean_accuracy_drop": drop, "accuracy_ok": c_acc})


def figure(m: dict[str, Any], path: Path) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    seeds = m["seeds"]
    _panel_latency(axes[0, 0], seeds, m.get("budget", BUDGET))
    _panel_accuracy(axes[0, 1], seeds)
    _panel_tables(axes[0, 2], m["tables"], seeds)
    view = next((r["view"] for r in seeds if "view" in r), None)
    if view is not None:
        _panel_view(axes[1, 0], axes[1, 1], view)
    _panel_plan(axes[1, 2], seeds[0])
    fig.suptitle("depth-dp: merging convolutions under a CPU latency budget (Kim et al. 2023)")
    fig.tight_layout()
    save(fig, path)


def _panel_latency(ax: Any, seeds: list[dict[str, Any]], budget: float) -> None:
    xs = range(len(seeds))
    ax.bar([x - 0.2 for x in xs], [r["predicted_ratio"] for r in seeds], 0.4,
           label="predicted (table)")
    ax.bar([x + 0.2 for x in xs], [r["measured_ratio"] for r in seeds], 0.4,
           label="measured (side by side)")
    ax.axhline(budget, color="k", lw=1, label=f"budget {budget:g}")
    ax.axhline(budget * (1 + LATENCY_TOL), color="k", ls=":", lw=1, label="+ tolerance")
    ax.set(xticks=list(xs), xticklabels=[f"seed {r['seed']}" for r in seeds],
           ylabel="latency / original", title="(c) CPU latency")
    ax.legend(fontsize=7)


def _panel_accuracy(ax: Any, seeds: list[dict[str, Any]]) -> None:
    for key, label in (("acc_original", "original"), ("acc_linear_before",
                                                      "activations dropped"),
                       ("acc_compressed", "merged, fine-tuned")):
        ax.plot([r["seed"] for r in seeds], [r[key] for r in seeds], "o-", label=label)
    ax.set(xlabel="seed", ylabel="test accuracy (%)", title="(c) accuracy")
    ax.legend(fontsize=7)


def _panel_tables(ax: Any, tables: list[dict[str, Any]], seeds: list[dict[str, Any]]) -> None:
    pairs = [(t["brute"][0], t["dp"][0]) for t in tables if t["dp"] and t["brute"]]
    if pairs:
        ax.plot(*zip(*pairs), "o", ms=3)
    errs = ", ".join(f"{r['exact_error']:.0e}" for r in seeds)
    ax.set(xlabel="exhaustive search: best importance", ylabel="DP: best importance",
           title=f"(b) DP vs brute force; (a) merge error {errs}")
    lims = ax.get_xlim()
    ax.plot(lims, lims, "k:", lw=1)


def _panel_view(ax_var: Any, ax_jac: Any, view: dict[str, Any]) -> None:
    for name, v in view.items():
        ax_var.plot(v["depth"], v["avg_var"], "o-", label=name, ms=3)
        ax_jac.semilogy(range(1, len(v["top_sv"]) + 1), v["top_sv"], "o-",
                        label=f"{name} (mean sq {v['mean_sq_sv']:.2g})", ms=3)
    ax_var.set(yscale="log", xlabel="depth (original convolution index)",
               ylabel="average channel variance", title="signal propagation (seed 0)")
    ax_jac.set(xlabel="rank", ylabel="singular value of d logits / d input",
               title="input-output Jacobian (seed 0)")
    ax_var.legend(fontsize=7)
    ax_jac.legend(fontsize=7)


def _panel_plan(ax: Any, row: dict[str, Any]) -> None:
    start = 0
    for k, seg in enumerate(row["segments"]):
        ax.barh(0, len(seg), left=start, color=f"C{k % 10}", edgecolor="k")
        start += len(seg)
    ax.set(xlim=(0, row["convs"]), yticks=[], xlabel="original convolutions",
           title=f"seed {row['seed']}: {row['convs']} -> {row['merged_depth']} convolutions, "
                 f"{row['dropped']} activations dropped")


CLAIM = Claim(
    name="depth-dp",
    paper="Kim, Jeong, Lee & Song (ICML 2023)",
    statement=("Replacing activations by the identity merges the convolutions around them "
               "into an equivalent shallower network; two-stage dynamic programming chooses "
               "which to replace exactly under a measured latency budget, and the compressed "
               "network meets the budget at about the original accuracy after fine-tuning."),
    criterion=CRITERION,
    quick_minutes=5.0,
    sizes=SIZES,
    measure=measure,
    decide=decide,
    figure=figure,
)
