"""byol-no-batch-stats (Richemond et al., "BYOL works even without batch statistics",
arXiv 2010.10241): BYOL with GroupNorm + Weight Standardization in place of every
BatchNorm learns representations as good as with BatchNorm (73.9% vs 74.3% ImageNet
linear evaluation, ResNet-50), without any batch statistics; removing all normalization
collapses it (0.1%).

Setup: a small 1-D pre-activation ResNet encoder (3 blocks, 32 channels; ``_models``) on
MNIST-1D trained with ``signalprop.train.fit(objective="byol")``: views by random shifts,
scaling, noise and masking; projector and predictor MLPs normalized like the encoder;
EMA target with tau from 0.99 to 1; SGD lr 0.05, momentum 0.9, weight decay 5e-4, cosine
schedule, batch 128. Three variants:

* ``bn``: BatchNorm in the encoder and the MLP heads (BYOL);
* ``gn_ws``: the BatchNorm encoder through ``signalprop.convert.bn_to_gn_ws`` (GroupNorm,
  8 groups, + Scaled-WS convolutions), GroupNorm heads: no batch statistics anywhere;
* ``none``: no normalization anywhere.

Judged by linear evaluation (a logistic-regression probe on the frozen encoder's features,
fitted on the training split, accuracy on the test split) against the same encoder at
initialization, and by ``signalprop.collapse`` of the online projections of two views of
the test split. The recipe was chosen on an independently generated MNIST-1D set
(generator seed 1) for the BatchNorm variant and is shared by all three.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._stats import diff_se, mean_se, separated
from signalprop.experiments.claims.identity._models import ZOO

VARIANTS = {"bn": "bn", "gn_ws": "gn", "none": "none"}  # encoder norm -> head norm
MARGIN = 0.05  # GN+WS probe accuracy at most this below BN's (mean over seeds)
ABOVE_RANDOM = 0.02  # a trained encoder's probe beats its initialization by at least this
COLLAPSED = 0.1  # std_ratio of the projections below this: collapsed
ENCODER = {"depth": 3, "width": 32}
CRITERION = (f"linear-probe test accuracy over seeds: GN+WS within {MARGIN:g} of BN; BN and "
             f"GN+WS each above their encoder at initialization by > {ABOVE_RANDOM:g} and "
             f"> 2 standard errors; the normalization-free runs collapse (std of the "
             f"normalized projections < {COLLAPSED:g} of 1/sqrt(d) in every seed); the GN+WS "
             "encoder is batch-independent (batch_independence finds no leak)")

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"seeds": [0], "steps": 10},
    "quick": {"seeds": [0, 1, 2], "steps": 600},
    "full": {"seeds": [0, 1, 2, 3, 4], "steps": 3000, "device": "auto"},
}
_METRICS = ("test_acc", "test_std_ratio", "test_effective_rank", "test_cos_views",
            "test_dead_dims")


def _initial(seeds: list[int]) -> dict[str, dict[str, list[float]]]:
    """Each variant's probe accuracy and projection std ratio at initialization: the
    trainer's own starting point (same seed, model, heads; ``BYOLObjective.evaluate``)."""
    import torch

    from signalprop.data import load_dataset
    from signalprop.experiments.claims.identity._models import resnet1d_encoder
    from signalprop.train.byol import BYOLObjective

    data = load_dataset("mnist1d")
    out: dict[str, dict[str, list[float]]] = {}
    for norm, head in VARIANTS.items():
        for seed in seeds:
            torch.manual_seed(seed)
            enc = resnet1d_encoder(norm=norm, **ENCODER)
            r = BYOLObjective(enc, data, seed, {"head_norm": head}).evaluate()
            for key in ("acc", "std_ratio"):
                out.setdefault(norm, {}).setdefault(f"test_{key}", []).append(r[key])
    return out


def _independence() -> dict[str, dict[str, Any]]:
    """batch_independence of a GN+WS and a BN encoder (train mode, 16 MNIST-1D examples)."""
    import torch

    from signalprop.experiments.claims.identity._models import resnet1d_encoder
    from signalprop.measure import batch_independence

    x = torch.randn(16, 40, generator=torch.Generator().manual_seed(0))
    out = {}
    for norm in ("gn_ws", "bn"):
        torch.manual_seed(0)
        r = batch_independence(resnet1d_encoder(norm=norm, **ENCODER), x)
        out[norm] = {"independent": r.independent, "leak_train": r.leak["train"],
                     "first_leak": r.first_leak["train"]}
    return out


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """BYOL per variant and seed; initial-encoder probes; batch independence."""
    steps = size["steps"]
    base = {"model": f"{ZOO}:resnet1d_encoder", "dataset": "mnist1d", "objective": "byol",
            "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine", "batch_size": 128, "steps": steps, "eval_every": steps,
            "log_every": 10}
    results: dict[str, dict[str, list[float]]] = {}
    for norm, head in VARIANTS.items():
        cfg = {**base, "model_args": {**ENCODER, "norm": norm},
               "objective_args": {"head_norm": head}}
        for run in ctx.sweep(f"byol-{norm}", cfg, {}, size["seeds"]):
            metrics = run["result"]["metrics"]
            for key in _METRICS:
                value = metrics.get(key) if run["result"]["status"] == "completed" else None
                results.setdefault(norm, {}).setdefault(key, []).append(
                    math.nan if value is None else float(value))
    return {"setup": {"seeds": size["seeds"], "steps": steps, "encoder": ENCODER,
                      "heads": VARIANTS, "dataset": "mnist1d", "lr": 0.05, "batch": 128},
            "final": results, "initial": _initial(size["seeds"]),
            "batch_independence": _independence()}


def decide(m: dict[str, Any]) -> Verdict:
    """The four parts of the criterion.

    Examples:
        >>> final = {"bn": {"test_acc": [0.84, 0.83, 0.85], "test_std_ratio": [0.9] * 3},
        ...          "gn_ws": {"test_acc": [0.82, 0.83, 0.81], "test_std_ratio": [0.8] * 3},
        ...          "none": {"test_acc": [0.6, 0.62, 0.61], "test_std_ratio": [0.01] * 3}}
        >>> init = {v: {"test_acc": [0.74, 0.75, 0.73], "test_std_ratio": [0.5] * 3}
        ...         for v in final}
        >>> indep = {"gn_ws": {"independent": True}, "bn": {"independent": False}}
        >>> decide({"final": final, "initial": init,
        ...         "batch_independence": indep}).reproduced
        True
    """
    acc = {v: m["final"][v]["test_acc"] for v in VARIANTS}
    gap, gap_se = diff_se(acc["bn"], acc["gn_ws"])
    close = math.isfinite(gap) and gap <= MARGIN
    learned = {}
    for v in ("bn", "gn_ws"):
        init = m["initial"][v]["test_acc"]
        d, _ = diff_se(acc[v], init)
        learned[v] = bool(d > ABOVE_RANDOM and separated(acc[v], init))
    stds = m["final"]["none"]["test_std_ratio"]
    collapsed = all(math.isfinite(s) and s < COLLAPSED for s in stds)
    independent = bool(m["batch_independence"]["gn_ws"]["independent"])
    reproduced = close and all(learned.values()) and collapsed and independent

    def fmt(vals: list[float]) -> str:
        mean, se = mean_se(vals)
        return f"{mean:.3f}" + ("" if math.isnan(se) else f" +- {se:.3f}")

    effect = (f"probe accuracy BN {fmt(acc['bn'])}, GN+WS {fmt(acc['gn_ws'])}, none "
              f"{fmt(acc['none'])} (at init: BN {fmt(m['initial']['bn']['test_acc'])}, GN+WS "
              f"{fmt(m['initial']['gn_ws']['test_acc'])}); projection std ratio BN "
              f"{fmt(m['final']['bn']['test_std_ratio'])}, GN+WS "
              f"{fmt(m['final']['gn_ws']['test_std_ratio'])}, none {fmt(stds)} (at init "
              f"{fmt(m['initial']['bn']['test_std_ratio'])}, "
              f"{fmt(m['initial']['gn_ws']['test_std_ratio'])}, "
              f"{fmt(m['initial']['none']['test_std_ratio'])}); GN+WS "
              f"encoder {'batch-independent' if independent else 'LEAKS across the batch'}")
    return Verdict(bool(reproduced), effect,
                   {"bn_minus_gn_ws": gap, "bn_minus_gn_ws_se": gap_se, "within_margin": close,
                    "learned": learned, "none_collapsed": collapsed,
                    "gn_ws_independent": independent})


def figure(m: dict[str, Any], path: Path) -> None:
    """Probe accuracy and projection std ratio per variant, at initialization and after."""
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6))
    names = list(VARIANTS)
    for i, v in enumerate(names):
        for j, (when, label, color) in enumerate((("initial", "at initialization", "grey"),
                                                  ("final", "after BYOL", "C0"))):
            x = i + (j - 0.5) * 0.3
            for a, key in ((ax, "test_acc"), (bx, "test_std_ratio")):
                vals = m[when][v][key]
                a.scatter([x] * len(vals), vals, color=color,
                          label=label if i == 0 and a is ax else None)
                a.errorbar(x, *[[q] for q in _finite_mean_se(vals)], color=color, capsize=4)
    for a in (ax, bx):
        a.set_xticks(range(len(names)), ["BN", "GN+WS", "none"])
    ax.set_ylabel("linear probe test accuracy")
    ax.legend(fontsize=8)
    bx.axhline(COLLAPSED, color="grey", ls=":", lw=1, label="collapse threshold")
    bx.axhline(1.0, color="grey", ls="--", lw=1, label="isotropic (1/sqrt(d))")
    bx.set_yscale("log")
    bx.set_ylabel("std of normalized projections x sqrt(d)")
    bx.legend(fontsize=8)
    fig.suptitle("BYOL on MNIST-1D with and without batch statistics", fontsize=9)
    save(fig, path)


def _finite_mean_se(vals: list[float]) -> tuple[float, float]:
    finite = [v for v in vals if math.isfinite(v)] or [math.nan]
    mean, se = mean_se(finite)
    return mean, 0.0 if math.isnan(se) else se


CLAIM = Claim(
    name="byol-no-batch-stats",
    paper="Richemond et al. (arXiv 2010.10241, 2020)",
    statement=("BYOL with GroupNorm + Weight Standardization instead of BatchNorm learns "
               "representations about as good as with BatchNorm without batch statistics; "
               "without any normalization it collapses."),
    criterion=CRITERION,
    quick_minutes=6.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
