"""Depth compression figure: the plan (which convolutions merge, which activations stay),
its latency, and the signal-propagation view before and after (channel variance at each
convolution's output along the original depth; singular values of the input-output
Jacobian)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from signalprop.plot._style import pyplot, save
from signalprop.results import CompressionPlan, JacobianSpectrumResult, SPPResult


def _depths(plan: CompressionPlan, res: SPPResult) -> list[int]:
    """Original depth of each record: 1..L for an uncompressed network, each merged
    convolution at the depth where its segment ends, else the record index."""
    n = len(res.records)
    if n == len(plan.convs):
        return list(range(1, n + 1))
    if n == plan.merged_depth:
        return plan.depths
    return [r.index for r in res.records]


def _plan_panel(ax: Any, plan: CompressionPlan) -> None:
    pos = {name: i for i, name in enumerate(plan.convs)}
    for k, seg in enumerate(plan.segments):
        start = pos[seg[0]]
        ax.barh(0, len(seg), left=start, height=0.6, color=f"C{k % 10}", edgecolor="k", lw=0.5)
    kept = [k for k in plan.kept]
    dropped = [k for k in plan.droppable if k not in plan.kept]
    ax.plot(kept, [0.45] * len(kept), "v", color="k", label="activation kept")
    ax.plot(dropped, [0.45] * len(dropped), "x", color="C3", label="activation dropped")
    measured = "" if plan.measured_ratio is None else \
        f", measured {plan.measured_ratio:.2f}x"
    ax.set(xlim=(0, len(plan.convs)), ylim=(-0.5, 0.8), yticks=[],
           xlabel="original convolutions (a bar per merged convolution)",
           title=f"{plan.label}: {len(plan.convs)} -> {plan.merged_depth} convolutions; "
                 f"latency predicted {plan.predicted_ratio:.2f}x{measured} "
                 f"(budget {plan.budget:g}x)")
    ax.legend(fontsize=7, loc="upper right")


def compression(plan: CompressionPlan, path: str | Path, *,
                spp: Mapping[str, SPPResult] | None = None,
                jacobian: Mapping[str, JacobianSpectrumResult] | None = None) -> Path:
    """Draw a compression plan and, optionally, SPPs and Jacobian spectra before/after.

    Args:
        plan: the :class:`~signalprop.results.CompressionPlan`.
        path: output file (.png, .svg, .pdf).
        spp: label -> SPP measured at every convolution's output (e.g. ``blocks=
            nn.Conv2d``) of the original (L records) or the compressed network (one per
            merged convolution, drawn at the depth where its segment ends).
        jacobian: label -> Jacobian spectrum (mean over examples of the top singular
            values against their rank).

    Returns:
        The written path.

    Examples:
        >>> from signalprop.results import BlockStats
        >>> plan = CompressionPlan("toy", ["a", "b", "c"], [[], ["r1"], ["r2"], []], [1, 2],
        ...                        [], [2], [["a", "b"], ["c"]], ["r1"], 0.7, 0.6)
        >>> before = SPPResult("original", [BlockStats(n, i, 0.0, 1.0 + i) for i, n in
        ...                                 enumerate("abc")])
        >>> after = SPPResult("compressed", [BlockStats(n, i, 0.0, 2.0 + i) for i, n in
        ...                                  enumerate("xy")])
        >>> compression(plan, "plan.png", spp={"original": before, "compressed": after}).name
        'plan.png'
    """
    panels = 1 + (spp is not None) + (jacobian is not None)
    plt = pyplot()
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), squeeze=False)
    axes = list(axes[0])
    _plan_panel(axes.pop(0), plan)
    if spp is not None:
        ax = axes.pop(0)
        for label, res in spp.items():
            ax.plot(_depths(plan, res), [r.avg_var for r in res.records], "o-", ms=3,
                    label=label)
        ax.set(yscale="log", xlabel="depth (original convolution index)",
               ylabel="average channel variance", title="signal propagation")
        ax.legend(fontsize=7)
    if jacobian is not None:
        ax = axes.pop(0)
        for label, res in jacobian.items():
            top = np.mean(res.top, axis=0)
            ax.semilogy(range(1, len(top) + 1), top, "o-", ms=3,
                        label=f"{label} (mean sq {np.mean(res.mean_sq_sv):.2g})")
        ax.set(xlabel="rank", ylabel="singular value", title="input-output Jacobian")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
