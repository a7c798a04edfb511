"""region-density: at initialization, region boundaries along lines through data are about
as dense as the number of neurons, not exponential in depth; ternary MLPs alike.

Hanin & Rolnick, "Complexity of Linear Regions in Deep Networks" (ICML 2019; PAPERS.md
section 11): for a ReLU network at initialization, the expected number of region
boundaries a line crosses per unit length is bounded by (and about equal to) a constant
times the number of neurons, so it grows linearly with width x depth, far below the
exponential maxima of the constructions.

Experiment: ReLU MLPs 64 -> width x depth -> 10 with He-normal weights (sigma_w^2 = 2) and
biases N(0, SIGMA_B2), and ternary MLPs of the same shapes
(:func:`signalprop.models.ternary_mlp`: TWN-ternarized He draws), on standardized
scikit-learn digits; through each of ``points`` test images, ``lines`` random directions
of length LENGTH, counted exactly (:func:`signalprop.measure.region_density`); several
seeds (networks and directions) per cell.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from signalprop.experiments._claim import Claim, RunContext, Verdict

SIGMA_B2 = 0.01  # bias variance at initialization
LENGTH = 4.0  # line length in standardized input units (digits have norm ~ 8)
SLOPE = (0.7, 1.3)  # allowed log-log slope of density against neurons (1 = linear)
DEPTH_RATIO = 2.0  # per-neuron density, deepest vs depth 1, within a factor of this
TERNARY_RATIO = 2.0  # ternary vs Gaussian density per cell within a factor of this

CRITERION = (
    f"mean density over seeds per cell: (a) the least-squares slope of log density against "
    f"log neurons (width x depth) over the Gaussian ReLU cells is in [{SLOPE[0]}, "
    f"{SLOPE[1]}]; (b) for every width, density per neuron at the largest depth is within a "
    f"factor {DEPTH_RATIO:g} of depth 1 (not exponential in depth); (c) in every cell the "
    f"ternary density is within a factor {TERNARY_RATIO:g} of the Gaussian one and the "
    f"ternary slope is in [{SLOPE[0]}, {SLOPE[1]}]"
)


def _network(kind: str, depth: int, width: int, seed: int) -> Any:
    import torch

    from signalprop.experiments._models import gaussian_mlp
    from signalprop.models import ternary_mlp

    if kind == "ternary":
        return ternary_mlp(depth, width, in_features=64, out_features=10, sigma_b2=SIGMA_B2,
                           seed=seed)
    torch.manual_seed(seed)
    return gaussian_mlp(depth, width, sigma_w2=2.0, sigma_b2=SIGMA_B2, activation="relu",
                        in_features=64, num_classes=10)


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    from signalprop.data import load_dataset
    from signalprop.measure import region_density

    test = load_dataset("digits").test
    x = test.x[: size["points"]].reshape(size["points"], -1).double()
    rows = []
    for kind in ("gaussian", "ternary"):
        for depth in size["depths"]:
            for width in size["widths"]:
                for seed in range(size["seeds"]):
                    net = _network(kind, depth, width, seed).eval()
                    r = region_density(net, x, n_lines=size["lines"], length=LENGTH,
                                       seed=seed, check=False)
                    rows.append({"kind": kind, "depth": depth, "width": width, "seed": seed,
                                 "density": r.density, "density_se": r.density_se,
                                 "neurons": r.n_neurons})
            ctx.log(f"  {kind} depth {depth}: " + ", ".join(
                f"w{r['width']} {r['density']:.2f}" for r in rows[-len(size['widths'])
                                                                   * size['seeds']:]
                if r["seed"] == 0))
    return {"rows": rows, "length": LENGTH, "sigma_b2": SIGMA_B2, "size": size}


def _means(rows: list[dict[str, Any]], kind: str) -> dict[tuple[int, int], float]:
    acc: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["kind"] == kind:
            acc[(r["depth"], r["width"])].append(r["density"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _slope(means: dict[tuple[int, int], float]) -> float:
    keys = [k for k, v in means.items() if v > 0]
    if len({d * w for d, w in keys}) < 2:
        return math.nan
    logn = np.log([d * w for d, w in keys])
    logd = np.log([means[k] for k in keys])
    return float(np.polyfit(logn, logd, 1)[0])


def decide(m: dict[str, Any]) -> Verdict:
    """Apply the criterion to per-seed densities.

    Examples:
        >>> rows = [{"kind": k, "depth": d, "width": w, "seed": 0, "density": 0.1 * d * w}
        ...         for k in ("gaussian", "ternary") for d in (1, 4) for w in (8, 32)]
        >>> decide({"rows": rows}).reproduced
        True
        >>> rows = [dict(r, density=0.1 * w * 3.0 ** r["depth"]) for r in rows
        ...         for w in [r["width"]]]
        >>> decide({"rows": rows}).reproduced   # exponential in depth
        False
    """
    gauss, tern = _means(m["rows"], "gaussian"), _means(m["rows"], "ternary")
    beta, beta_t = _slope(gauss), _slope(tern)
    depths = sorted({d for d, _ in gauss})
    widths = sorted({w for _, w in gauss})
    ratios = {}
    for w in widths:
        lo, hi = gauss[(depths[0], w)] / (depths[0] * w), gauss[(depths[-1], w)] / (depths[-1] * w)
        ratios[w] = hi / lo if lo > 0 else math.inf
    tern_ratio = {f"{d},{w}": tern[(d, w)] / gauss[(d, w)] if gauss[(d, w)] > 0 else math.inf
                  for d, w in gauss if (d, w) in tern}
    a = SLOPE[0] <= beta <= SLOPE[1]
    b = all(1 / DEPTH_RATIO <= r <= DEPTH_RATIO for r in ratios.values())
    c = (SLOPE[0] <= beta_t <= SLOPE[1]) and bool(tern_ratio) and all(
        1 / TERNARY_RATIO <= r <= TERNARY_RATIO for r in tern_ratio.values())
    worst = max(tern_ratio.values(), key=lambda r: abs(math.log(r)) if r > 0 else math.inf,
                default=math.nan)
    effect = (f"density ~ neurons^{beta:.2f} (ReLU), ^{beta_t:.2f} (ternary); per-neuron "
              f"density deepest/shallowest "
              + ", ".join(f"w{w}: {r:.2f}" for w, r in ratios.items())
              + f"; ternary/Gaussian per cell {min(tern_ratio.values(), default=math.nan):.2f}"
              f"..{max(tern_ratio.values(), default=math.nan):.2f} (worst {worst:.2f})")
    return Verdict(bool(a and b and c), effect,
                   {"slope": beta, "slope_ternary": beta_t, "linear_in_neurons": a,
                    "depth_ratio": {str(w): r for w, r in ratios.items()},
                    "not_exponential_in_depth": b, "ternary_ratio": tern_ratio,
                    "ternary_alike": c})


def figure(m: dict[str, Any], path: Path) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, marker in (("gaussian", "o"), ("ternary", "s")):
        rows = [r for r in m["rows"] if r["kind"] == kind]
        for i, depth in enumerate(sorted({r["depth"] for r in rows})):
            acc: dict[int, list[float]] = defaultdict(list)
            for r in rows:
                if r["depth"] == depth:
                    acc[r["width"]].append(r["density"])
            ws = sorted(acc)
            mean = [np.mean(acc[w]) for w in ws]
            se = [np.std(acc[w], ddof=1) / math.sqrt(len(acc[w])) if len(acc[w]) > 1 else 0
                  for w in ws]
            style = dict(marker=marker, ms=4, capsize=2, color=f"C{i}",
                         ls="-" if kind == "gaussian" else "--")
            ax0.errorbar([depth * w for w in ws], mean, yerr=se,
                         label=f"{kind} depth {depth}", **style)
            ax1.errorbar(ws, [v / (depth * w) for v, w in zip(mean, ws)],
                         yerr=[e / (depth * w) for e, w in zip(se, ws)], **style)
    ns = sorted({r["depth"] * r["width"] for r in m["rows"]})
    dens = [r["density"] for r in m["rows"] if r["kind"] == "gaussian"]
    if dens and min(dens) > 0:
        scale = np.exp(np.mean(np.log(dens)) - np.mean(np.log(
            [r["depth"] * r["width"] for r in m["rows"] if r["kind"] == "gaussian"])))
        ax0.plot(ns, [scale * n for n in ns], "k:", lw=1, label="proportional to neurons")
    ax0.set_xscale("log")
    ax0.set_yscale("log")
    ax0.set_xlabel("neurons (width x depth)")
    ax0.set_ylabel(f"region boundaries per unit length (lines of length {m['length']:g})")
    ax0.legend(fontsize=6, ncol=2)
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("width")
    ax1.set_ylabel("density per neuron (solid: Gaussian, dashed: ternary)")
    ax1.set_title("per-neuron density: flat across depth and width")
    save(fig, path)


CLAIM = Claim(
    name="region-density",
    paper="Hanin & Rolnick (ICML 2019)",
    statement="At initialization the number of linear regions along random lines through "
              "data grows about linearly with the number of neurons (not exponentially "
              "with depth) for ReLU MLPs, and ternary MLPs behave alike.",
    criterion=CRITERION,
    sizes={"smoke": {"depths": [1, 2], "widths": [8, 16], "seeds": 2, "points": 4,
                     "lines": 2},
           "quick": {"depths": [1, 2, 4, 8], "widths": [16, 32, 64], "seeds": 3,
                     "points": 16, "lines": 4},
           "full": {"depths": [1, 2, 4, 8, 16], "widths": [16, 32, 64, 128], "seeds": 5,
                    "points": 32, "lines": 8}},
    measure=measure, decide=decide, figure=figure, quick_minutes=1.0,
)
