"""ternary-regions: ternary ReLU networks reach region counts polynomial in width and
exponential in depth, and match general ReLU networks after doubling width and depth or
squaring the width.

Nakahara, Kobayashi & Matsushima (arXiv 2507.16079; PAPERS.md section 11): with weights in
{-1, 0, +1} a zigzag tooth has slope +-1, so it takes two neurons per breakpoint, and the
next layer must add up copies of the zigzag to rescale it; doubling the width and then
doubling the depth (identity layers holding the copies) or squaring the width (copies in
the ReLU layer) is enough to reach the lower bound of general ReLU networks.

Experiment (exact, no randomness): for input dimension 1, hidden width n and depth L,
count with :func:`signalprop.measure.linear_regions` the linear pieces of

* ``relu``: the general construction of width n (Serra et al.'s bound (n + 1)^L),
* ``ternary``: the ternary construction with ReLU width n (floor((n + 1) / 2)^L),
* ``ternary-deep``: ReLU width 2n + 1 and identity copy layers (depth 2L - 1),
* ``ternary-deep-relu``: the same with ReLU copy layers (ReLU layers only),
* ``ternary-wide``: ReLU layers only, width (n + 1)(2n + 1) ("squared"),

and, on 2-D slices (:func:`signalprop.measure.plane_regions`), the ternary construction
with two inputs. NOTE: the lower bounds for the ternary networks are the counts of
signalprop's constructions (``signalprop.theory.regions``), which follow the paper's
recipe; the constants of the paper's own theorem could not be checked against its text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from signalprop.experiments._claim import Claim, RunContext, Verdict

KINDS = ("relu", "ternary", "ternary-deep", "ternary-deep-relu", "ternary-wide")
MATCHING = ("ternary-deep", "ternary-deep-relu", "ternary-wide")  # must reach (n + 1)^L

CRITERION = (
    "in every cell (width n >= 3, depth L) the exact counts reach their lower bounds: the "
    "general ReLU construction (n + 1)^L (Serra et al.), the ternary construction of ReLU "
    "width n floor((n + 1) / 2)^L, and each ternary network with doubled width and doubled "
    "depth (identity or ReLU copy layers) or squared width ((n + 1)(2n + 1)) the general "
    "bound (n + 1)^L of width n; no count exceeds Serra et al.'s upper bound for its ReLU "
    "widths; on 2-D slices the ternary construction with k teeth per layer reaches k^(2L)"
)


def _networks(n: int, depth: int) -> dict[str, Any]:
    from signalprop.models import relu_region_net, ternary_region_net

    k = (n + 1) // 2
    return {"relu": relu_region_net([n] * depth),
            "ternary": ternary_region_net([k] * depth),
            "ternary-deep": ternary_region_net([n + 1] * depth, copies="identity"),
            "ternary-deep-relu": ternary_region_net([n + 1] * depth, copies="relu"),
            "ternary-wide": ternary_region_net([n + 1] * depth, copies="width")}


def _relu_widths(net: Any) -> list[int]:
    """Widths of the layers followed by a ReLU (copy layers followed by none are absorbed
    into the next Linear, so they add no bound)."""
    mods = list(net)
    return [m.out_features for m, nxt in zip(mods, mods[1:])
            if isinstance(m, torch.nn.Linear) and isinstance(nxt, torch.nn.ReLU)]


def measure(ctx: RunContext, size: dict[str, Any]) -> dict[str, Any]:
    from signalprop import theory
    from signalprop.measure import linear_regions, plane_regions
    from signalprop.models import ternary_region_net

    cells = []
    for n in size["widths"]:
        for depth in size["depths"]:
            general = theory.lower_bound_serra([n] * depth, 1)
            for kind, net in _networks(n, depth).items():
                lo, hi = net.domain
                r = linear_regions(net, torch.full((1, 1), lo), end=torch.full((1, 1), hi))
                widths = _relu_widths(net)
                cells.append({
                    "kind": kind, "width": n, "depth": depth, "count": r.counts[0],
                    "bound": net.regions if kind != "relu" else general,
                    "general_bound": general, "relu_widths": widths,
                    "upper": theory.upper_bound_serra(widths, 1)})
            ctx.log(f"  n={n} L={depth}: " + ", ".join(
                f"{c['kind']} {c['count']}" for c in cells[-len(KINDS):]))
    plane = []
    for k in size["plane_teeth"]:
        for depth in size["plane_depths"]:
            net = ternary_region_net([k] * depth, input_dim=2)
            lo, hi = net.domain
            r = plane_regions(net, torch.zeros(1, 2), bounds=(lo, hi, lo, hi))
            plane.append({"teeth": k, "depth": depth, "count": r.count,
                          "bound": theory.ternary_construction_count([k] * depth, 2)})
    return {"cells": cells, "plane_cells": plane, "size": size}


def decide(m: dict[str, Any]) -> Verdict:
    """Every count reaches its bound (and the general one where the paper says so) and
    stays below the upper bound.

    Examples:
        >>> cell = {"kind": "relu", "width": 3, "depth": 1, "count": 4, "bound": 4,
        ...         "general_bound": 4, "upper": 4}
        >>> decide({"cells": [cell], "plane_cells": []}).reproduced
        True
        >>> decide({"cells": [dict(cell, count=3)], "plane_cells": []}).reproduced
        False
    """
    below, matched, over = [], [], []
    for c in m["cells"]:
        tag = f"{c['kind']} n={c['width']} L={c['depth']}"
        if c["count"] < c["bound"]:
            below.append(tag)
        if c["count"] > c["upper"]:
            over.append(tag)
        if c["kind"] in MATCHING:
            matched.append(c["count"] >= c["general_bound"])
    plane_below = [f"k={p['teeth']} L={p['depth']}" for p in m["plane_cells"]
                   if p["count"] < p["bound"]]
    ok = not below and not over and not plane_below and bool(m["cells"]) and all(matched)
    growth = {c["kind"]: c["count"] for c in m["cells"]
              if c["width"] == max(x["width"] for x in m["cells"])
              and c["depth"] == max(x["depth"] for x in m["cells"])}
    effect = (f"{len(m['cells']) - len(below)}/{len(m['cells'])} line cells and "
              f"{len(m['plane_cells']) - len(plane_below)}/{len(m['plane_cells'])} slice "
              f"cells reach their bounds; doubled/squared ternary nets reach the general "
              f"bound in {sum(matched)}/{len(matched)}; largest cell: "
              + ", ".join(f"{k} {v}" for k, v in growth.items()))
    return Verdict(ok, effect, {"below_bound": below, "above_upper": over,
                                "plane_below_bound": plane_below,
                                "matched_general": int(sum(matched)),
                                "matching_cells": len(matched)})


def figure(m: dict[str, Any], path: Path) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    cells = m["cells"]
    n_max = max(c["width"] for c in cells)
    l_max = max(c["depth"] for c in cells)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, kind in enumerate(KINDS):
        mine = sorted((c for c in cells if c["kind"] == kind and c["width"] == n_max),
                      key=lambda c: c["depth"])
        ax0.plot([c["depth"] for c in mine], [c["count"] for c in mine], "o-", ms=4,
                 color=f"C{i}", label=kind)
        ax0.plot([c["depth"] for c in mine], [c["bound"] for c in mine], ":", color=f"C{i}")
        mine = sorted((c for c in cells if c["kind"] == kind and c["depth"] == l_max),
                      key=lambda c: c["width"])
        ax1.plot([c["width"] for c in mine], [c["count"] for c in mine], "o-", ms=4,
                 color=f"C{i}", label=kind)
        ax1.plot([c["width"] for c in mine], [c["bound"] for c in mine], ":", color=f"C{i}")
    ax0.set_yscale("log")
    ax0.set_xlabel("depth L (ReLU layers of the construction)")
    ax0.set_title(f"width n = {n_max}: counts (dots) and bounds (dotted)")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xticks(sorted({c["width"] for c in cells}), [str(w) for w in
                                                         sorted({c["width"] for c in cells})])
    ax1.set_xlabel("width n (of the general ReLU network)")
    ax1.set_title(f"depth L = {l_max}")
    for ax in (ax0, ax1):
        ax.set_ylabel("linear regions (exact count)")
        ax.legend(fontsize=7)
    ax1.minorticks_off()
    save(fig, path)


CLAIM = Claim(
    name="ternary-regions",
    paper="Nakahara, Kobayashi & Matsushima (arXiv 2507.16079)",
    statement="Ternary ReLU networks reach linear-region counts polynomial in width and "
              "exponential in depth, and doubling the width then doubling the depth, or "
              "squaring the width, matches the lower bound of general ReLU networks.",
    criterion=CRITERION,
    sizes={"smoke": {"widths": [3], "depths": [1, 2], "plane_teeth": [2],
                     "plane_depths": [1]},
           "quick": {"widths": [3, 4, 5, 6], "depths": [1, 2, 3, 4], "plane_teeth": [2, 3],
                     "plane_depths": [1, 2]},
           "full": {"widths": [3, 4, 5, 6, 7, 8], "depths": [1, 2, 3, 4, 5],
                    "plane_teeth": [2, 3, 4], "plane_depths": [1, 2, 3]}},
    measure=measure, decide=decide, figure=figure, quick_minutes=0.5,
)
