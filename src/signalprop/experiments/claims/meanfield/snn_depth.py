"""snn-depth: self-normalizing MLPs keep their accuracy as depth grows, where plain ReLU
and ReLU + BatchNorm MLPs lose it.

What the paper states, and in which regime (PAPERS.md sections 4 and 8b). Klambauer,
Unterthiner, Mayr & Hochreiter (NeurIPS 2017): SELU with LeCun-normal weights and alpha
dropout keeps activations at mean 0 / variance 1 through depth; on 121 UCI tasks (and
Tox21) SNNs beat the other feed-forward networks (plain MSRA-initialized, BatchNorm,
LayerNorm, WeightNorm, Highway, ResNet), and the best SNNs are deep while the other
networks do best shallow and degrade with depth. Depth, width, learning rate and dropout
were tuned per architecture and task.

Design (revised for issue 15; the history is in docs/reproduce-history.md):

* Task: MNIST-1D (4000 training signals; 20% of each class held out for validation;
  1000 test signals). MLPs of width 64 stay well below its ceiling (test accuracy about
  0.5-0.7), so a loss of a few points with depth can show; the earlier two UCI tables
  had 36 and 113 test examples, where one diverged seed decided the verdict.
* Networks, at depth 4 and 32: the SNN (SELU, LeCun-normal weights, alpha dropout 0 or
  0.05 chosen on validation as the paper tunes it), plain ReLU (He-normal) and ReLU +
  BatchNorm, all with a linear head; SGD with momentum 0.9, batch 64, cosine decay, a
  fixed number of epochs.
* Tuning: each (network, depth) tries every learning rate of LRS (and the SNN both
  dropout rates) with TUNE seeds on the validation split and keeps the best mean
  validation accuracy; then EVAL fresh seeds train at that setting and are judged on the
  test split (the test examples never choose anything). A best learning rate on the edge
  of the grid is reported.
* A diverged run scores chance accuracy (0.1), never 0, and the diverged runs are counted.

Criterion (``decide``), for each comparator C in {ReLU, ReLU + BN}:

1. the interaction: C's accuracy drop from depth 4 to 32 exceeds the SNN's drop by more
   than K = 2 standard errors (the SNN keeps more of its accuracy with depth);
2. at depth 32 the SNN's test accuracy exceeds C's by more than K standard errors.

REPRODUCED when all four hold. The effect line also gives each check's detectable size
(K standard errors), so a miss can be read against what the design could see.

Seeds (``PILOT_NOTE``): from a pilot's per-seed spread, so that an interaction of EFFECT
= 0.04 (the smallest effect of interest, fixed before the pilot) exceeds 2 standard
errors with probability 0.95.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._models import ZOO
from signalprop.experiments._pool import with_workers
from signalprop.experiments._rows import errorbar_lines, group_metric
from signalprop.experiments._stats import diff_se, interaction_se, mean_se

SNN, RELU, BN = "SNN", "ReLU", "ReLU + BN"
MODELS = {SNN: ("snn_mlp", {}), RELU: ("relu_mlp", {"batchnorm": False}),
          BN: ("relu_mlp", {"batchnorm": True})}
COMPARATORS = (RELU, BN)
CHANCE = 0.1
K = 2.0
EFFECT = 0.04  # smallest interaction the seeds are sized to detect
VALIDATION = 0.2
PILOT_NOTE = "filled in below"

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"depths": [2, 4], "width": 16, "epochs": 1, "batch": 64,
              "lrs": {SNN: [0.01], RELU: [0.01], BN: [0.01]},
              "snn_dropouts": [0.0], "tune_seeds": [0], "eval_seeds": [100, 101],
              "dataset": "mnist1d", "in_features": 40, "workers": 1},
    "quick": {"depths": [4, 32], "width": 64, "epochs": 30, "batch": 64,
              "lrs": {SNN: [0.003, 0.01, 0.03, 0.1], RELU: [0.003, 0.01, 0.03, 0.1],
                      BN: [0.01, 0.03, 0.1, 0.3]}, "snn_dropouts": [0.0, 0.05],
              "tune_seeds": [0, 1], "eval_seeds": list(range(100, 106)),
              "dataset": "mnist1d", "in_features": 40, "workers": 2},
    # a GPU and your own CIFAR-10 copy: widths of the paper, 6 depths, 100 epochs
    "full": {"depths": [2, 4, 8, 16, 32, 64], "width": 512, "epochs": 100, "batch": 128,
             "lrs": {m: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3] for m in (SNN, RELU, BN)},
             "snn_dropouts": [0.0, 0.05, 0.1],
             "tune_seeds": [0, 1], "eval_seeds": list(range(100, 110)),
             "dataset": "cifar10", "in_features": 3072, "workers": 1},
}

CRITERION = (
    f"each network at its own learning rate (and the SNN its alpha dropout) chosen on a "
    f"validation split, judged on test accuracy over fresh seeds (a diverged run scores "
    f"chance); for both ReLU and ReLU + BN: its accuracy drop from the shallowest to the "
    f"deepest network exceeds the SNN's drop by more than {K:g} standard errors, and the "
    f"deepest SNN beats it by more than {K:g} standard errors"
)


def _key(model: str, depth: int) -> str:
    return f"{model}|{depth}"


def _base(size: dict[str, Any], model: str, depth: int, holdout: str) -> dict[str, Any]:
    factory, extra = MODELS[model]
    flat = {"flatten": True} if size["dataset"] == "cifar10" else {}
    return {"model": f"{ZOO}:{factory}",
            "model_args": {"depth": depth, "width": size["width"],
                           "in_features": size["in_features"], "num_classes": 10,
                           **extra, **flat},
            "dataset": size["dataset"],
            "dataset_args": {"validation_fraction": VALIDATION, "holdout": holdout},
            "optimizer": "sgd", "momentum": 0.9, "batch_size": size["batch"],
            "schedule": "cosine", "epochs": size["epochs"], "log_every": 50}


def _tune(ctx: RunContext, size: dict[str, Any], model: str, depth: int
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validation accuracy of every (lr[, dropout]) and the best setting."""
    lrs = size["lrs"][model]
    grid: dict[str, list[Any]] = {"lr": lrs}
    if model == SNN:
        grid = {"model_args.dropout": size["snn_dropouts"], **grid}
    slug = model.replace(" + ", "-").lower()
    rows = ctx.sweep(f"tune-{slug}-d{depth}", _base(size, model, depth, "validation"), grid,
                     size["tune_seeds"])
    acc = group_metric(rows, list(grid), failed=CHANCE)
    val = {"/".join(f"{v:g}" for v in k): mean_se(v)[0] for k, v in acc.items()}
    best = max(acc, key=lambda k: mean_se(acc[k])[0])  # ties: the first in grid order
    setting = dict(zip(grid, best))
    return setting, {"val_acc": val, "best": setting,
                     "lr_at_grid_edge": len(lrs) > 2 and setting["lr"] in (lrs[0], lrs[-1])}


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """Tune each (network, depth) on validation, then train fresh seeds at its best setting."""
    import torch

    torch.set_num_threads(1)
    ctx = with_workers(ctx, size["workers"])
    tuning, acc, loss, diverged = {}, {}, {}, {}
    for model in MODELS:
        for depth in size["depths"]:
            setting, tuning[_key(model, depth)] = _tune(ctx, size, model, depth)
            base = _base(size, model, depth, "test")
            for key, value in setting.items():
                if key == "lr":
                    base["lr"] = value
                else:
                    base["model_args"][key.split(".", 1)[1]] = value
            slug = model.replace(" + ", "-").lower()
            rows = ctx.sweep(f"eval-{slug}-d{depth}", base, {"model_args.depth": [depth]},
                             size["eval_seeds"])
            key = _key(model, depth)
            acc[key] = group_metric(rows, ["model_args.depth"], failed=CHANCE)[(depth,)]
            loss[key] = group_metric(rows, ["model_args.depth"], "train_loss")[(depth,)]
            diverged[key] = sum(r["result"]["status"] != "completed" for r in rows)
    return {"depths": size["depths"], "width": size["width"], "epochs": size["epochs"],
            "tune_seeds": size["tune_seeds"], "eval_seeds": size["eval_seeds"],
            "dataset": size["dataset"], "tuning": tuning, "test_acc": acc,
            "train_loss": loss, "diverged": diverged}


def _z(d: float, se: float) -> float:
    return d / se if se > 0 else float("nan")


def decide(m: dict[str, Any]) -> Verdict:
    """The interaction and the deepest-network comparison against each comparator.

    Examples:
        >>> acc = {"SNN|4": [0.60, 0.61, 0.62], "SNN|32": [0.60, 0.61, 0.59],
        ...        "ReLU|4": [0.60, 0.62, 0.61], "ReLU|32": [0.50, 0.52, 0.51],
        ...        "ReLU + BN|4": [0.60, 0.61, 0.60], "ReLU + BN|32": [0.53, 0.52, 0.54]}
        >>> decide({"depths": [4, 32], "eval_seeds": [0, 1, 2], "test_acc": acc}).reproduced
        True
    """
    acc, depths = m["test_acc"], m["depths"]
    lo, hi = min(depths), max(depths)
    snn_lo, snn_hi = acc[_key(SNN, lo)], acc[_key(SNN, hi)]
    per: dict[str, Any] = {}
    for c in COMPARATORS:
        c_lo, c_hi = acc[_key(c, lo)], acc[_key(c, hi)]
        inter = interaction_se(c_lo, c_hi, snn_lo, snn_hi)
        deep = diff_se(snn_hi, c_hi)
        per[c] = {"drop": diff_se(c_lo, c_hi), "drop_minus_snn_drop": inter,
                  "snn_minus_it_deepest": deep,
                  "loses_more_with_depth": bool(inter[0] > K * inter[1] > 0),
                  "snn_beats_it_deepest": bool(deep[0] > K * deep[1] > 0)}
    snn_drop = diff_se(snn_lo, snn_hi)
    ok = all(p["loses_more_with_depth"] and p["snn_beats_it_deepest"] for p in per.values())
    parts = [f"SNN drop {snn_drop[0]:+.3f} +- {snn_drop[1]:.3f}"]
    for c, p in per.items():
        (i, ise), (d, dse) = p["drop_minus_snn_drop"], p["snn_minus_it_deepest"]
        parts.append(f"{c}: drop {p['drop'][0]:+.3f} +- {p['drop'][1]:.3f}, minus SNN's "
                     f"{i:+.3f} ({_z(i, ise):.1f} se; detectable {K * ise:.3f}), SNN - {c} "
                     f"at depth {hi} {d:+.3f} ({_z(d, dse):.1f} se; detectable {K * dse:.3f})")
    n_div = sum(int(v) for v in m.get("diverged", {}).values())
    effect = (f"test accuracy, depth {lo} -> {hi}, {len(m['eval_seeds'])} seeds each: "
              + "; ".join(parts) + f"; {n_div} diverged runs (scored {CHANCE:g})")
    return Verdict(ok, effect, {"per_comparator": per, "snn_drop": snn_drop,
                                "n_diverged": n_div})


def figure(m: dict[str, Any], path: Path) -> None:
    """Test accuracy against depth per network (mean +- s.e.), and each network's drop
    from the shallowest to the deepest (what the interaction compares)."""
    from signalprop.plot._style import pyplot, save

    depths, acc = m["depths"], m["test_acc"]
    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    tuning = m.get("tuning", {})

    def lrs(model: str) -> str:
        return "/".join(f"{tuning[_key(model, d)]['best']['lr']:g}"
                        if _key(model, d) in tuning else "?" for d in depths)

    errorbar_lines(ax0, depths, {f"{model} (lr {lrs(model)})":
                                 [acc[_key(model, d)] for d in depths] for model in MODELS})
    ax0.axhline(CHANCE, color="grey", ls=":", lw=1)
    ax0.set_xscale("log", base=2)
    ax0.set_xlabel("depth (hidden layers)")
    ax0.set_ylabel("test accuracy (mean +- s.e.)")
    ax0.legend(fontsize=7)
    lo, hi = min(depths), max(depths)
    drops = [diff_se(acc[_key(model, lo)], acc[_key(model, hi)]) for model in MODELS]
    ax1.bar(list(MODELS), [d for d, _ in drops], yerr=[s for _, s in drops], capsize=4,
            color=["C0", "C1", "C2"])
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set_ylabel(f"accuracy drop, depth {lo} -> {hi}")
    verdict = "REPRODUCED" if decide(m).reproduced else "not reproduced"
    ax1.set_title(f"{m.get('dataset', 'mnist1d')}: {verdict}", fontsize=9)
    save(fig, path)


CLAIM = Claim(
    name="snn-depth",
    paper="Klambauer, Unterthiner, Mayr & Hochreiter (NeurIPS 2017)",
    statement="Self-normalizing MLPs (SELU, LeCun init, alpha dropout) keep their accuracy "
              "as depth grows from 4 to 32 layers, where plain ReLU and ReLU + BatchNorm "
              "MLPs lose it (each tuned on a validation split).",
    criterion=CRITERION,
    quick_minutes=6.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
