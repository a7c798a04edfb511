"""Convolution spectra against depth: sigma_max, sigma_min and the condition number of every
conv layer of a model (one line per result)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signalprop.plot._style import pyplot, save
from signalprop.results.conv_spectra import ConvSpectraResult
from signalprop.results.spp import stack_labels


def _draw(ax_s: Any, ax_c: Any, res: ConvSpectraResult, label: str, color: Any,
          floor: float, top: float) -> None:
    """One result's lines: extremes (zeros at ``floor``) and condition (inf at ``top``)."""
    idx = np.array([r.index for r in res.records])
    exact = np.array([r.exact for r in res.records])
    smax = np.array([max(r.sigma_max, floor) for r in res.records])
    smin = np.array([max(r.sigma_min, floor) for r in res.records])
    ax_s.plot(idx, smax, "-", color=color, lw=1.2, label=f"{label}: sigma_max")
    ax_s.plot(idx, smin, "--", color=color, lw=1.2, label=f"{label}: sigma_min")
    for marker_exact, face in ((True, color), (False, "none")):
        sel = exact == marker_exact
        ax_s.scatter(idx[sel], smax[sel], s=14, color=color, facecolors=face, zorder=3)
        ax_s.scatter(idx[sel], smin[sel], s=14, color=color, facecolors=face, zorder=3,
                     marker="s")
    for r in res.records:
        if not r.exact:
            ax_s.vlines(r.index, r.sigma_max_low, r.sigma_max_high, color=color, lw=2.5,
                        alpha=0.35)
            ax_s.vlines(r.index, max(r.sigma_min_low, floor), max(r.sigma_min_high, floor),
                        color=color, lw=2.5, alpha=0.2)
    cond = np.array([r.condition if math.isfinite(r.condition) else top for r in res.records])
    ax_c.plot(idx, cond, "-o", color=color, ms=3, lw=1.2, label=label)
    inf = np.array([not math.isfinite(r.condition) for r in res.records])
    if inf.any():
        ax_c.scatter(idx[inf], cond[inf], marker="^", s=40, color=color, zorder=3)


def conv_spectra(
    results: ConvSpectraResult | Sequence[ConvSpectraResult],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Two panels against the conv layer's position: the largest and smallest singular
    values (log scale; a vertical bar spans a bounds layer's certified interval, hollow
    markers; zeros on a dotted floor line), and the condition number sigma_max / sigma_min
    (layers with sigma_min = 0 are drawn at the top edge with an upward triangle).

    Args:
        results: one result or several (e.g. before and after a fix).
        path: output file; the suffix picks the format (.png, .svg, .pdf).
        title: figure title.

    Returns:
        The written path.

    Examples:
        >>> from signalprop.results import ConvLayerSpectrum
        >>> recs = [ConvLayerSpectrum(f"c{i}", i, "Conv2d", (2, 4, 4), (2, 4, 4), "fft", True,
        ...                           32, 2.0 + i, 0.5, 2.0 + i, 2.0 + i, 0.5, 0.5)
        ...         for i in range(3)]
        >>> conv_spectra(ConvSpectraResult("m", recs), "/tmp/signalprop_doctest_cs.png").name
        'signalprop_doctest_cs.png'
    """
    res_list = [results] if isinstance(results, ConvSpectraResult) else list(results)
    if not res_list or not all(isinstance(r, ConvSpectraResult) and r.records
                               for r in res_list):
        raise ValueError("results must be a ConvSpectraResult with records, or a non-empty "
                         "sequence of them")
    plt = pyplot()
    fig, (ax_s, ax_c) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    finite_cond = [r.condition for res in res_list for r in res.records
                   if math.isfinite(r.condition)]
    top = max(finite_cond, default=10.0) * 3
    # zeros (sigma_min = 0, a bound's lower end) are drawn at a floor below the rest
    positive = [v for res in res_list for r in res.records
                for v in (r.sigma_max, r.sigma_min, r.sigma_min_high) if v > 0]
    floor = min(positive, default=1.0) / 10
    for i, (res, label) in enumerate(zip(res_list, stack_labels(res_list))):  # type: ignore[arg-type]
        _draw(ax_s, ax_c, res, label, colors[i % len(colors)], floor, top)
    ax_s.axhline(floor, color="0.7", lw=0.8, ls=":", zorder=0)
    ax_s.axhline(1.0, color="0.5", lw=0.8, zorder=0)
    ax_c.axhline(1.0, color="0.5", lw=0.8, zorder=0)
    ax_s.set_yscale("log")
    ax_c.set_yscale("log")
    ax_s.set_xlabel("conv layer (call order)")
    ax_c.set_xlabel("conv layer (call order)")
    ax_s.set_ylabel("singular value")
    ax_c.set_ylabel("condition number sigma_max / sigma_min")
    ax_s.set_title("extreme singular values (hollow: bounds; dotted line: 0)")
    ax_c.set_title("condition number (triangle: sigma_min = 0)")
    ax_s.legend(fontsize=7)
    if len(res_list) > 1:
        ax_c.legend(fontsize=7)
    for ax in (ax_s, ax_c):
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(title or "Convolution spectra")
    fig.tight_layout()
    return save(fig, path)
