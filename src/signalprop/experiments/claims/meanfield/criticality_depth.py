"""criticality-depth: the trainable depth of tanh MLPs follows the correlation depth scale.

Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (ICLR 2017) and Roberts, Yaida & Hanin
(PDLT) (PAPERS.md section 5): signals of different inputs stay distinguishable for about
xi_c layers, with xi_c^-1 = -log(sigma_w^2 E[phi'(u1) phi'(u2)]) at the correlation fixed
point; xi_c diverges at the order-to-chaos boundary chi_1 = 1. Networks train when their
depth is below a few xi_c (about 6 xi_c in the paper), so the trainable depth is largest
at the critical sigma_w^2.

Experiment: tanh MLPs (sigma_b^2 = 0.05) on scikit-learn's digits across a grid of
sigma_w^2 x depth, trained briefly with SGD + momentum; a cell "trains" when its mean
test accuracy over seeds is at least TRAIN_ACC (chance is 0.1). xi_c comes from
``signalprop.theory.mean_field``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from signalprop.experiments._claim import Claim, RunContext, Verdict
from signalprop.experiments._models import ZOO
from signalprop.experiments._rows import errorbar_lines, group_metric

SIGMA_B2 = 0.05  # Schoenholz et al.'s bias variance
TRAIN_ACC = 0.4  # a cell trains when its mean test accuracy >= this (chance: 0.1)
BOUNDARY = 6.0  # the paper's trainable depth, in units of xi_c
BAND = 2.0  # predicted to train below BOUNDARY / BAND xi_c, not to above BOUNDARY * BAND
AGREEMENT = 0.8  # share of the cells outside the band that must agree with the prediction
# the sigma_w^2 x depth grid, the seeds, training steps and the width
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"sigma_w2": [1.0, 1.76, 4.0], "depths": [2, 8], "seeds": [0], "steps": 30,
              "width": 32},
    "quick": {"sigma_w2": [0.8, 1.0, 1.3, 1.76, 2.5, 4.0, 6.0],
              "depths": [4, 8, 16, 32, 64, 128], "seeds": [0, 1], "steps": 400, "width": 64},
    "full": {"device": "auto", "sigma_w2": [0.8, 1.0, 1.2, 1.4, 1.6, 1.76, 2.0, 2.5, 3.0, 4.0, 6.0],
             "depths": [4, 8, 16, 32, 64, 128, 256], "seeds": [0, 1, 2, 3, 4], "steps": 1500,
             "width": 128},
}

CRITERION = (
    f"a cell (sigma_w^2, depth) trains when its mean test accuracy over seeds is >= "
    f"{TRAIN_ACC:g} (chance 0.1); the largest trainable depth is reached at the grid "
    f"sigma_w^2 nearest the critical one (ties allowed), and of the cells with depth < "
    f"{BOUNDARY / BAND:g} xi_c (predicted to train) or > {BOUNDARY * BAND:g} xi_c (predicted "
    f"not to), at least {100 * AGREEMENT:.0f}% do as predicted, with both kinds present"
)


def _key(sigma_w2: float, depth: int) -> str:
    return f"{sigma_w2:g},{depth}"


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    """Train the (sigma_w^2, depth) grid; xi_c and the critical sigma_w^2 from theory."""
    from signalprop import theory

    sigmas, depths = size["sigma_w2"], size["depths"]
    base = {"model": f"{ZOO}:gaussian_mlp",
            "model_args": {"width": size["width"], "sigma_b2": SIGMA_B2, "activation": "tanh",
                           "in_features": 64, "num_classes": 10},
            "dataset": "digits", "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
            "batch_size": 64, "steps": size["steps"], "log_every": 50}
    rows = ctx.sweep("tanh-grid", base, {"model_args.sigma_w2": sigmas,
                                         "model_args.depth": depths}, size["seeds"])
    # a diverged run (NaN loss) did not train: it counts as chance accuracy
    acc = group_metric(rows, ["model_args.sigma_w2", "model_args.depth"], failed=0.1)
    runs = [{"label": r["label"], "status": r["result"]["status"],
             "test_acc": r["result"]["metrics"].get("test_acc")} for r in rows]
    return {"sigma_w2": sigmas, "depths": depths, "seeds": size["seeds"],
            "steps": size["steps"], "width": size["width"], "sigma_b2": SIGMA_B2,
            "critical_sigma_w2": theory.critical_point("tanh", sigma_b2=SIGMA_B2).sigma_w2,
            "xi_c": {f"{s:g}": theory.mean_field("tanh", s, SIGMA_B2).xi_c for s in sigmas},
            "test_acc": {_key(s, d): v for (s, d), v in acc.items()}, "runs": runs}


def decide(m: dict[str, Any]) -> Verdict:
    """Where the cells train against the prediction from xi_c, and where the largest
    trainable depth peaks.

    Examples:
        >>> acc = {"1,4": [0.9], "1,64": [0.1], "1.76,4": [0.9], "1.76,64": [0.8]}
        >>> m = {"sigma_w2": [1.0, 1.76], "depths": [4, 64], "critical_sigma_w2": 1.76,
        ...      "xi_c": {"1": 3.6, "1.76": 5000.0}, "test_acc": acc}
        >>> decide(m).reproduced
        True
    """
    sigmas, depths, critical = m["sigma_w2"], m["depths"], m["critical_sigma_w2"]
    mean_acc = {(s, d): float(np.mean(m["test_acc"][_key(s, d)])) for s in sigmas
                for d in depths}
    trains = {k: v >= TRAIN_ACC for k, v in mean_acc.items()}
    max_depth = {s: max((d for d in depths if trains[(s, d)]), default=0) for s in sigmas}
    nearest = min(sigmas, key=lambda s: abs(s - critical))
    peak_ok = max_depth[nearest] >= max(max_depth.values())
    agree, predicted_train, predicted_fail, cells = 0, 0, 0, []
    for (s, d), ok in trains.items():
        xi = m["xi_c"][f"{s:g}"]
        if d < BOUNDARY / BAND * xi:
            predicted, predicted_train = True, predicted_train + 1
        elif d > BOUNDARY * BAND * xi:
            predicted, predicted_fail = False, predicted_fail + 1
        else:
            continue
        agree += predicted == ok
        cells.append({"sigma_w2": s, "depth": d, "predicted_train": predicted, "trains": ok})
    decided = predicted_train + predicted_fail
    share = agree / decided if decided else math.nan
    reproduced = bool(peak_ok and predicted_train > 0 and predicted_fail > 0
                      and share >= AGREEMENT)
    effect = ("largest trainable depth per sigma_w^2 "
              + ", ".join(f"{s:g}: {max_depth[s]}" for s in sigmas)
              + f" (critical {critical:.2f}; peak there: {'yes' if peak_ok else 'no'}); "
              f"{100 * share:.0f}% of {predicted_train} predicted-trainable + "
              f"{predicted_fail} predicted-untrainable cells agree with {BOUNDARY:g} xi_c")
    return Verdict(reproduced, effect, {
        "mean_test_acc": {_key(s, d): v for (s, d), v in mean_acc.items()},
        "max_trainable_depth": {f"{s:g}": max_depth[s] for s in sigmas},
        "nearest_critical": nearest, "peak_at_critical": bool(peak_ok), "agreement": share,
        "n_predicted_train": predicted_train, "n_predicted_fail": predicted_fail,
        "decided_cells": cells})


def figure(m: dict[str, Any], path: Path) -> None:
    """Mean test accuracy over (sigma_w^2, depth) with k xi_c curves, and accuracy vs depth."""
    from signalprop import theory
    from signalprop.plot._style import pyplot, save

    sigmas, depths, critical = m["sigma_w2"], m["depths"], m["critical_sigma_w2"]
    acc = {(s, d): m["test_acc"][_key(s, d)] for s in sigmas for d in depths}
    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5))
    grid = np.array([[np.mean(acc[(s, d)]) for s in sigmas] for d in depths])
    mesh = ax0.pcolormesh(np.arange(len(sigmas) + 1), np.arange(len(depths) + 1), grid,
                          vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(mesh, ax=ax0, label="mean test accuracy")
    ax0.set_xticks(np.arange(len(sigmas)) + 0.5, [f"{s:g}" for s in sigmas])
    ax0.set_yticks(np.arange(len(depths)) + 0.5, [str(d) for d in depths])
    # k * xi_c in the heatmap's (index) coordinates: interpolate log-depth between rows
    # (chaotic-phase fixed points cost ~0.1 s each: a coarse curve through the grid points)
    fine = np.unique(np.concatenate([np.linspace(sigmas[0], sigmas[-1], 40), sigmas]))
    xi_fine = [theory.mean_field("tanh", s, SIGMA_B2).xi_c for s in fine]
    xs = np.interp(fine, sigmas, np.arange(len(sigmas))) + 0.5
    logd = np.log(depths)
    for k, style in ((BOUNDARY, "-"), (BOUNDARY / BAND, ":"), (BOUNDARY * BAND, ":")):
        ys = [np.interp(np.log(max(k * xi, 1e-9)), logd, np.arange(len(depths)),
                        left=-1, right=len(depths) + 1) + 0.5 for xi in xi_fine]
        ax0.plot(xs, ys, "w" + style, lw=1.5, label=f"{k:g} xi_c")
    ax0.set_ylim(0, len(depths))
    ax0.axvline(np.interp(critical, sigmas, np.arange(len(sigmas))) + 0.5, color="r", lw=1,
                label=f"critical sigma_w^2 = {critical:.3f}")
    ax0.set_xlabel("sigma_w^2")
    ax0.set_ylabel("depth")
    ax0.legend(loc="upper right", fontsize=7)
    ax0.set_title("tanh MLP on digits: test accuracy")
    errorbar_lines(ax1, depths, {f"sigma_w^2={s:g}": [acc[(s, d)] for d in depths]
                                 for s in sigmas})
    ax1.axhline(TRAIN_ACC, color="k", ls="--", lw=1, label="'trains' threshold")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("depth")
    ax1.set_ylabel("test accuracy (mean +- s.e. over seeds)")
    ax1.legend(fontsize=7)
    save(fig, path)


CLAIM = Claim(
    name="criticality-depth",
    paper="Schoenholz et al. (ICLR 2017); Roberts, Yaida & Hanin (PDLT)",
    statement="The depth to which tanh MLPs train tracks the correlation depth scale xi_c "
              "predicted by mean-field theory (about 6 xi_c) and is largest at the critical "
              "sigma_w^2.",
    criterion=CRITERION,
    quick_minutes=5.0,
    sizes=SIZES, measure=measure, decide=decide, figure=figure,
)
