"""Pictures of propagation along the sequence and across the grid: the length SPP (block
statistics against sequence length, with predictions overlaid) and the spatial-Jacobian
heat map. Plots read result objects only and draw on a ``matplotlib.figure.Figure``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from signalprop.results.sequence import LengthSPPResult, SpatialJacobianResult

_STATS = {"rms": "root mean square of the output", "avg_var": "average channel variance",
          "avg_sq_mean": "average squared channel mean"}


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130, bbox_inches="tight")
    return fig


def _results(results: LengthSPPResult | Sequence[LengthSPPResult] | None, name: str
             ) -> list[LengthSPPResult]:
    if results is None:
        return []
    out = [results] if isinstance(results, LengthSPPResult) else list(results)
    if not all(isinstance(r, LengthSPPResult) for r in out):
        raise ValueError(f"{name} must be LengthSPPResult(s)")
    return out


def _finite(xs: list[int], ys: list[float | None]) -> tuple[list[int], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def length_spp(
    results: LengthSPPResult | Sequence[LengthSPPResult],
    path: str | Path | None = None,
    *,
    stat: str = "rms",
    predicted: LengthSPPResult | Sequence[LengthSPPResult] | None = None,
    blocks: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Block statistics against sequence length (log-log), predictions dashed; a second
    panel shows the count correlation where the results have one.

    Args:
        results: measured (or predicted) length SPPs; one line per (result, block).
        path: file to write, or None.
        stat: "rms", "avg_var" or "avg_sq_mean".
        predicted: predictions drawn as dashed black-edged lines (every block they hold).
        blocks: only these block names (default: every block).
        title: the figure title.

    Returns:
        The Figure.

    Examples:
        >>> from signalprop import theory
        >>> pred = [theory.attention_sum([1, 10, 100], n, value_mean=1.0)
        ...         for n in ("softmax", "none")]
        >>> len(length_spp(pred).axes)
        1
    """
    if stat not in _STATS:
        raise ValueError(f"stat must be one of {sorted(_STATS)}, got {stat!r}")
    measured, preds = _results(results, "results"), _results(predicted, "predicted")
    if not measured:
        raise ValueError("results must hold at least one LengthSPPResult")
    with_corr = any(r.count_corr is not None for res in measured for r in res.records)
    fig = Figure(figsize=(10.5 if with_corr else 5.6, 4.2), constrained_layout=True)
    axes = fig.subplots(1, 2 if with_corr else 1, squeeze=False)[0]
    colour = 0
    for res in measured:
        for name in res.names:
            if blocks is not None and name not in blocks:
                continue
            xs, ys = _finite(*res.curve(name, stat))
            ls = "--" if res.kind == "predicted" else "-"
            shown = res.label if len(res.names) == 1 else f"{res.label}: {name}"
            axes[0].plot(xs, ys, ls, marker="o", ms=3, color=f"C{colour % 10}", label=shown)
            if with_corr:
                cx, cy = _finite(*res.curve(name, "count_corr"))
                axes[1].plot(cx, cy, marker="o", ms=3, color=f"C{colour % 10}")
            colour += 1
    for res in preds:
        for name in res.names:
            xs, ys = _finite(*res.curve(name, stat))
            axes[0].plot(xs, ys, "--", color="k", lw=1.0, alpha=0.7)
            axes[0].annotate(res.label, (xs[-1], ys[-1]), fontsize=7, ha="right",
                             va="bottom")
    axes[0].set_xscale("log")
    if any(v > 0 for line in axes[0].get_lines() for v in line.get_ydata()):
        axes[0].set_yscale("log")
    axes[0].set_xlabel("sequence length")
    axes[0].set_ylabel(_STATS[stat])
    axes[0].legend(fontsize=7)
    if with_corr:
        axes[1].set_xscale("log")
        axes[1].set_ylim(-1.05, 1.05)
        axes[1].axhline(0.0, color="0.7", lw=0.8)
        axes[1].set_xlabel("sequence length")
        axes[1].set_ylabel("corr(token output norm, token count)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def spatial_jacobian(
    results: SpatialJacobianResult | Sequence[SpatialJacobianResult],
    path: str | Path | None = None,
    *,
    titles: Sequence[str] | None = None,
    floor: float = 1e-8,
) -> Figure:
    """Heat maps of |dy / dx_source| (log colour scale shared by all panels), the source
    marked with a cross.

    Args:
        results: one or more spatial-Jacobian results with 2-D maps.
        path: file to write, or None.
        titles: one title per panel (default: the labels).
        floor: values below this are drawn at the floor (log scale).

    Returns:
        The Figure.

    Examples:
        >>> import torch
        >>> r = SpatialJacobianResult("toy", torch.rand(6, 6) + 0.1, (0, 0), (1, 1, 6, 6),
        ...                           (1, 1, 6, 6))
        >>> len(spatial_jacobian([r, r]).axes)          # two panels and a colour bar
        3
    """
    res = [results] if isinstance(results, SpatialJacobianResult) else list(results)
    if not res or not all(isinstance(r, SpatialJacobianResult) and r.map.dim() == 2
                          for r in res):
        raise ValueError("results must be SpatialJacobianResult(s) with 2-D maps")
    maps = [np.maximum(r.map.numpy(), floor) for r in res]
    hi = max(float(m.max()) for m in maps)
    lo = max(min(float(m.min()) for m in maps), hi * 1e-12, floor)
    fig = Figure(figsize=(3.6 * len(res) + 0.8, 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(res), squeeze=False)[0]
    im = None
    for i, (ax, r, m) in enumerate(zip(axes, res, maps)):
        im = ax.imshow(m, norm=LogNorm(vmin=lo, vmax=max(hi, lo * 10)), cmap="magma",
                       origin="upper")
        if len(r.source) == 2:
            ax.plot(r.source[1], r.source[0], "x", color="cyan", ms=8)
        ax.set_title(titles[i] if titles else r.label, fontsize=9)
        ax.set_xlabel("column j")
        ax.set_ylabel("row i")
    fig.colorbar(im, ax=list(axes), label="|dy / dx_source| (summed over channels)")
    return _save(fig, path)
