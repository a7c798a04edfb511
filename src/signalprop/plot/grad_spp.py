"""Gradient propagation figure: the backward counterpart of the SPP panels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from signalprop.plot._style import pyplot, save
from signalprop.results.grad_spp import GradSPPResult
from signalprop.results.spp import stack_labels

_PANELS = (
    ("grad_avg_var", "Average channel variance of dL/dy"),
    ("grad_avg_sq_mean", "Average squared channel mean of dL/dy"),
    ("param_grad_norm", "Parameter gradient norm"),
)

GradPredicted = (GradSPPResult | Sequence[GradSPPResult | None] | Mapping[str, GradSPPResult]
                 | None)


def _xy(res: GradSPPResult, field: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in res.records:
        v = getattr(r, field)
        if v is not None and math.isfinite(v) and not r.nonfinite:
            xs.append(r.index)
            ys.append(v)
    return xs, ys


def _match(results: list[GradSPPResult], predicted: GradPredicted) -> list[GradSPPResult | None]:
    if predicted is None:
        return [None] * len(results)
    if isinstance(predicted, GradSPPResult):
        if len(results) == 1:
            return [predicted]
        return [predicted if r.label == predicted.label else None for r in results]
    if isinstance(predicted, Mapping):
        return [predicted.get(r.label) for r in results]
    preds = list(predicted)
    if len(preds) != len(results):
        raise ValueError(f"predicted has {len(preds)} entries for {len(results)} results; pass "
                         "one per result (None to skip), or a mapping from label to prediction")
    return preds


def gradient_spp(
    results: GradSPPResult | Sequence[GradSPPResult],
    path: str | Path,
    predicted: GradPredicted = None,
    title: str | None = None,
) -> Path:
    """Draw gradient variance, squared gradient mean and parameter-gradient norm vs depth.

    One solid line per measured result; predictions (``kind="predicted"``, e.g. from
    :func:`~signalprop.results.grad_spp.chi_prediction`) dashed in the same colour on the
    variance panel. Panels whose values span more than two decades use a log axis. The
    block nearest the output whose gradients hold NaN/Inf is marked with a red cross.

    Args:
        results: one result or several (labels tell them apart).
        path: output file; the suffix picks the format (.png, .svg, .pdf).
        predicted: one prediction, a list aligned with ``results`` or a label mapping.
        title: figure title.

    Returns:
        The written path.

    Examples:
        >>> from signalprop.results import GradBlockStats, GradSPPResult
        >>> r = GradSPPResult("toy", [GradBlockStats(f"b{i}", i, 0.0, 0.5**i, 1.0, 4)
        ...                           for i in range(5)])
        >>> gradient_spp(r, "grad_spp.png").suffix
        '.png'
    """
    res_list = [results] if isinstance(results, GradSPPResult) else list(results)
    if not res_list or not all(isinstance(r, GradSPPResult) for r in res_list):
        raise ValueError("results must be a GradSPPResult or a non-empty sequence of them")
    preds = _match(res_list, predicted)
    labels = stack_labels(res_list)  # type: ignore[arg-type]
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (field, name), ax in zip(_PANELS, axes):
        plotted: list[float] = []
        for i, (res, pred, label) in enumerate(zip(res_list, preds, labels)):
            color = colors[i % len(colors)]
            xs, ys = _xy(res, field)
            if xs:
                ax.plot(xs, ys, "-", color=color, lw=1.4, label=label)
                plotted += ys
            if pred is not None and field == "grad_avg_var":
                pxs, pys = _xy(pred, field)
                ax.plot(pxs, pys, "--", color=color, lw=1.2, label=f"{label} (predicted)")
                plotted += pys
            bad = res.first_nonfinite
            if bad is not None:
                ax.axvline(bad.index, color=color, ls=":", lw=1)
                ax.plot([bad.index], [ys[-1] if ys else 1.0], "x", color="red", ms=9, mew=2)
            for t in res.meta.get("transitions", []) if i == 0 else []:
                ax.axvline(t, color="0.85", lw=0.8, zorder=0)
        _axis(ax, name, plotted)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, names, fontsize=8)
    fig.suptitle(title or f"Gradient propagation (loss: {res_list[0].loss})")
    fig.tight_layout()
    return save(fig, path)


def _axis(ax: Any, name: str, plotted: list[float]) -> None:
    pos = [v for v in plotted if v > 0]
    if pos and max(pos) / min(pos) > 1e2:
        ax.set_yscale("log")
    ax.set_title(name, fontsize=11)
    ax.set_xlabel("block (depth)")
    if not plotted:
        ax.text(0.5, 0.5, "not available", ha="center", va="center", color="0.5",
                transform=ax.transAxes)
    ax.grid(alpha=0.3)
