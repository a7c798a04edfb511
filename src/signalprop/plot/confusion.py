"""Gradient confusion figure: density of pairwise cosines of per-example gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signalprop.plot._style import pyplot, save
from signalprop.results.confusion import ConfusionResult
from signalprop.results.spp import stack_labels


def _smooth(density: np.ndarray, width_bins: float) -> np.ndarray:
    """Gaussian smoothing of a histogram (a kernel density estimate on the bin grid)."""
    if width_bins <= 0:
        return density
    half = int(math.ceil(3 * width_bins))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / width_bins) ** 2)
    return np.convolve(np.pad(density, half), k / k.sum(), mode="valid")


def confusion(
    results: ConfusionResult | Sequence[ConfusionResult],
    path: str | Path,
    title: str | None = None,
    smooth_bins: float = 1.5,
) -> Path:
    """Histogram (as a density) of pairwise gradient cosines, one colour per result, with a
    smoothed density curve, the minimum (dotted) and the mean (dashed) marked, and eta in
    the legend.

    Args:
        results: one result or several (e.g. one per depth).
        path: output file; the suffix picks the format (.png, .svg, .pdf).
        title: figure title.
        smooth_bins: width (in bins) of the Gaussian smoothing of the density curve;
            0 draws the histogram only.

    Returns:
        The written path.

    Examples:
        >>> r = ConfusionResult("toy", 4, 6, 0.1, -0.2, 0.1, 0.2, {}, 1.0, 0,
        ...                     [-1.0, -0.5, 0.0, 0.5, 1.0], [0, 2, 3, 1])
        >>> confusion(r, "confusion.png").suffix
        '.png'
    """
    res_list = [results] if isinstance(results, ConfusionResult) else list(results)
    if not res_list or not all(isinstance(r, ConfusionResult) for r in res_list):
        raise ValueError("results must be a ConfusionResult or a non-empty sequence of them")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (res, label) in enumerate(zip(res_list, stack_labels(res_list))):  # type: ignore[arg-type]
        color = colors[i % len(colors)]
        edges = np.asarray(res.hist_edges)
        counts = np.asarray(res.hist_counts, dtype=float)
        if counts.sum() == 0:
            continue
        density = counts / (counts.sum() * np.diff(edges))
        ax.stairs(density, edges, color=color, alpha=0.35, fill=True)
        centers = 0.5 * (edges[1:] + edges[:-1])
        ax.plot(centers, _smooth(density, smooth_bins), color=color, lw=1.6,
                label=f"{label}: eta={res.eta:.3g}, min cos={res.min_cosine:.3f}, "
                      f"mean={res.mean_cosine:.3f}")
        ax.axvline(res.min_cosine, color=color, ls=":", lw=1.2)
        ax.axvline(res.mean_cosine, color=color, ls="--", lw=1.0)
    ax.axvline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("cosine similarity of per-example gradients")
    ax.set_ylabel("density")
    ax.set_title(title or "Gradient confusion")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)
