"""Signal Propagation Plot figure: the three panels of Brock, De & Smith (ICLR 2021)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from signalprop.plot._style import pyplot, save
from signalprop.results import SPPResult
from signalprop.results.spp import stack_labels

_PANELS = (
    ("avg_sq_mean", "Average squared channel mean"),
    ("avg_var", "Average channel variance"),
    ("res_var", "Residual branch variance"),
)

Predicted = SPPResult | Sequence[SPPResult | None] | Mapping[str, SPPResult] | None


def _as_list(results: SPPResult | Sequence[SPPResult]) -> list[SPPResult]:
    if isinstance(results, SPPResult):
        return [results]
    results = list(results)
    if not results or not all(isinstance(r, SPPResult) for r in results):
        raise ValueError("results must be an SPPResult or a non-empty sequence of them")
    return results


def _match_predictions(results: list[SPPResult], predicted: Predicted) -> list[SPPResult | None]:
    """One prediction (or None) per measured result: by position, label, or broadcast."""
    if predicted is None:
        return [None] * len(results)
    if isinstance(predicted, SPPResult):
        if len(results) == 1:
            return [predicted]
        return [predicted if r.label == predicted.label else None for r in results]
    if isinstance(predicted, Mapping):
        return [predicted.get(r.label) for r in results]
    preds = list(predicted)
    if len(preds) != len(results):
        raise ValueError(
            f"predicted has {len(preds)} entries for {len(results)} results; pass one per "
            "result (None to skip), or a mapping from label to prediction"
        )
    return preds


def _finite_xy(res: SPPResult, field: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in res.records:
        v = getattr(r, field)
        if v is not None and math.isfinite(v) and not r.nonfinite:
            xs.append(r.index)
            ys.append(v)
    return xs, ys


def _wants_log(values: list[float]) -> bool:
    pos = [v for v in values if v > 0]
    return bool(pos) and max(pos) / max(min(pos), 1e-300) > 1e3


def _scale(res: SPPResult) -> float:
    vals = [abs(v) for f in ("avg_sq_mean", "avg_var") for v in _finite_xy(res, f)[1]]
    return max(vals, default=1.0) or 1.0


def _rows_by_scale(results: list[SPPResult], span: float = 1e3) -> list[list[int]]:
    """Group result indices so each row's largest values lie within ``span`` of each other:
    a network whose signal explodes gets its own row instead of flattening the others."""
    order = sorted(range(len(results)), key=lambda i: _scale(results[i]))
    rows: list[list[int]] = []
    for i in order:
        if rows and _scale(results[i]) <= span * _scale(results[rows[-1][0]]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [sorted(r) for r in sorted(rows, key=min)]


def spp(
    results: SPPResult | Sequence[SPPResult],
    path: str | Path,
    predicted: Predicted = None,
    title: str | None = None,
) -> Path:
    """Draw the three SPP panels (squared mean, variance, residual variance) vs depth.

    One solid line per measured result; predictions (``kind="predicted"`` results, e.g.
    from ``signalprop.theory``) are dashed in the same colour. Results whose values lie
    within three decades of each other share a row of panels; a result far larger (an
    exploding network) gets a row of its own, so it cannot flatten the others. A panel
    switches to a log axis when its values span more than three decades. The first block
    with NaN/Inf values is marked with a red cross and a dotted vertical line; stage
    transitions in ``meta["transitions"]`` get faint vertical lines.

    Args:
        results: one result or several (labels tell them apart).
        path: output file; the suffix picks the format (.png, .svg, .pdf).
        predicted: one prediction, a list aligned with ``results`` (None to skip), or a
            mapping from result label to prediction.
        title: figure title.

    Returns:
        The written path.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> r = SPPResult("toy", [BlockStats(f"b{i}", i, 0.0, 1 + 0.04 * i, 1.0) for i in range(5)])
        >>> spp(r, "spp.png").suffix
        '.png'
    """
    res_list = _as_list(results)
    preds = _match_predictions(res_list, predicted)
    rows = _rows_by_scale(res_list)
    plt = pyplot()
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 4.2 * len(rows)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = stack_labels(res_list)
    for row, members in zip(axes, rows):
        for (field, name), ax in zip(_PANELS, row):
            _panel(ax, field, name, [(i, res_list[i], preds[i], labels[i],
                                      colors[i % len(colors)]) for i in members])
        handles, names = row[1].get_legend_handles_labels()
        if handles:
            row[1].legend(handles, names, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def _panel(ax: Any, field: str, name: str, entries: list[tuple[Any, ...]]) -> None:
    plotted: list[float] = []
    for n, (_, res, pred, label, color) in enumerate(entries):
        xs, ys = _finite_xy(res, field)
        if xs:
            ax.plot(xs, ys, "-", color=color, lw=1.4, label=label)
            plotted += ys
        if pred is not None:
            pxs, pys = _finite_xy(pred, field)
            if pxs:
                ax.plot(pxs, pys, "--", color=color, lw=1.2, alpha=0.9,
                        label=f"{label} (predicted)")
                plotted += pys
        bad = res.first_nonfinite
        if bad is not None:
            ax.axvline(bad.index, color=color, ls=":", lw=1)
            y = ys[-1] if ys else 1.0
            ax.plot([bad.index], [y], "x", color="red", ms=9, mew=2)
            ax.annotate(f"NaN/Inf from {bad.name}", (bad.index, y), fontsize=7,
                        color="red", xytext=(4, 6), textcoords="offset points")
        for t in res.meta.get("transitions", []) if n == 0 else []:
            ax.axvline(t, color="0.85", lw=0.8, zorder=0)
    if _wants_log(plotted):
        ax.set_yscale("log")
    ax.set_title(name, fontsize=11)
    ax.set_xlabel("block (depth)")
    if not plotted:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", color="0.5",
                transform=ax.transAxes)
    ax.grid(alpha=0.3)
