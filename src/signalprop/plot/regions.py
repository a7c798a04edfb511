"""Pictures of linear regions: a 2-D slice filled region by region, the output along
segments with its breakpoints, and region density against depth, width or neurons.

Plots read result objects only (they never count anything themselves) and draw on a
``matplotlib.figure.Figure`` (no pyplot), so they work on any backend.
"""

from __future__ import annotations

import colorsys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from signalprop.results.regions import PlaneRegionsResult, RegionDensityResult, RegionsResult

_GOLDEN = 0.618033988749895


def _pattern_colour(pid: str) -> tuple[float, float, float]:
    """A colour from a pattern id (hue spread by the golden ratio; same id, same colour)."""
    h = int(pid, 16)
    hue = ((h % 7919) * _GOLDEN) % 1.0
    light = 0.55 + 0.25 * ((h >> 13) % 3) / 2
    return colorsys.hls_to_rgb(hue, light, 0.65)


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=130, bbox_inches="tight")
    return fig


def plane_regions(result: PlaneRegionsResult, path: str | Path | None = None, *,
                  color: str = "pattern", output: int = 0, edges: bool = True,
                  title: str | None = None) -> Figure:
    """Fill every region of a 2-D slice: by activation pattern, or by the output.

    Args:
        result: a :class:`~signalprop.results.PlaneRegionsResult`.
        path: file to write (PNG, SVG, PDF), or None to only return the figure.
        color: "pattern" (one colour per activation pattern) or "output" (the output
            ``output`` at each region's centroid, on a colour scale).
        output: which output coordinate ``color="output"`` shows.
        edges: draw the region boundaries.
        title: the title (default: label and region count).

    Returns:
        The Figure.

    Examples:
        >>> import torch, torch.nn as nn
        >>> from signalprop.measure import plane_regions as count
        >>> r = count(nn.Sequential(nn.Linear(2, 6), nn.ReLU()), torch.zeros(1, 2))
        >>> len(plane_regions(r).axes[0].collections)
        1
    """
    if not isinstance(result, PlaneRegionsResult):
        raise ValueError(f"result must be a PlaneRegionsResult, got {type(result).__name__}")
    if color not in ("pattern", "output"):
        raise ValueError(f"color must be 'pattern' or 'output', got {color!r}")
    fig = Figure(figsize=(5.2, 4.6) if color == "output" else (4.6, 4.6),
                 constrained_layout=True)
    ax = fig.add_subplot()
    polys = [p.numpy() for p in result.polygons()]
    coll = PolyCollection(polys, edgecolors="k" if edges else "face",
                          linewidths=0.25 if edges else 0.0)
    if color == "pattern":
        coll.set_facecolor([_pattern_colour(p) for p in result.patterns])
    else:
        coll.set_array(result.values[:, output].numpy())
        coll.set_cmap("viridis")
        fig.colorbar(coll, ax=ax, label=f"output {output}")
    ax.add_collection(coll)
    s0, s1, r0, r1 = result.bounds
    ax.set_xlim(s0, s1)
    ax.set_ylim(r0, r1)
    ax.set_aspect("equal")
    ax.set_xlabel("s (along u)")
    ax.set_ylabel("r (along v)")
    ax.set_title(title or f"{result.label}: {result.count} regions")
    return _save(fig, path)


def linear_regions(result: RegionsResult, path: str | Path | None = None, *,
                   segments: Sequence[int] | None = None, output: int = 0,
                   title: str | None = None) -> Figure:
    """The output along each segment, piece by piece, with its breakpoints.

    Args:
        result: a :class:`~signalprop.results.RegionsResult`.
        path: file to write, or None.
        segments: which segments to draw (default: the first four).
        output: which output coordinate to draw.
        title: the title.

    Returns:
        The Figure.

    Examples:
        >>> import torch, torch.nn as nn
        >>> from signalprop.measure import linear_regions as count
        >>> r = count(nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1)),
        ...           torch.zeros(1, 1), end=torch.ones(1, 1))
        >>> len(linear_regions(r).axes)
        1
    """
    if not isinstance(result, RegionsResult):
        raise ValueError(f"result must be a RegionsResult, got {type(result).__name__}")
    chosen = list(segments) if segments is not None else list(range(min(4, len(result.counts))))
    fig = Figure(figsize=(7.0, 3.6), constrained_layout=True)
    ax = fig.add_subplot()
    for n, i in enumerate(chosen):
        seg = result.segment(i)
        cuts = np.array([0.0, *seg.breakpoints, 1.0])
        colour = f"C{n % 10}"
        for k in range(len(cuts) - 1):
            a, b = cuts[k], cuts[k + 1]
            m = 0.5 * (a + b)
            v, s = float(seg.values[k, output]), float(seg.slopes[k, output])
            ax.plot([a, b], [v + (a - m) * s, v + (b - m) * s], color=colour, lw=1.2,
                    label=f"segment {i}: {len(cuts) - 1} pieces" if k == 0 else None)
        for t, jump in zip(seg.breakpoints, seg.jumps):
            ax.axvline(t, color=colour, lw=0.3, alpha=0.6, ls="--" if jump else ":")
    ax.set_xlabel("t (start -> end)")
    ax.set_ylabel(f"output {output}")
    ax.legend(fontsize=7)
    ax.set_title(title or f"{result.label}: linear pieces along segments")
    return _save(fig, path)


_AXES = {"neurons": ("n_neurons", "neurons"), "depth": ("depth", "depth (piecewise-linear "
                                                                  "layers)"),
         "width": ("width", "width")}


def region_density(results: Sequence[RegionDensityResult], path: str | Path | None = None, *,
                   x: str = "neurons", per_neuron: bool = False,
                   title: str | None = None) -> Figure:
    """Region density (boundaries per unit length, mean +- s.e.) against the number of
    neurons, the depth or the width; one line per label.

    With ``x="neurons"`` both axes are logarithmic and a dashed line of slope 1 (density
    proportional to neurons, Hanin & Rolnick 2019) passes through the data's centre.

    Args:
        results: :class:`~signalprop.results.RegionDensityResult` objects; results with the
            same label form one line.
        path: file to write, or None.
        x: "neurons", "depth" or "width".
        per_neuron: plot density / neurons instead.
        title: the title.

    Returns:
        The Figure.

    Examples:
        >>> rs = [RegionDensityResult("relu", [d * 3, d * 5], 1.0, 2, 1, d * 4, [4] * d)
        ...       for d in (1, 2, 4)]
        >>> region_density(rs, x="depth").axes[0].get_xlabel()
        'depth (piecewise-linear layers)'
    """
    if x not in _AXES:
        raise ValueError(f"x must be one of {sorted(_AXES)}, got {x!r}")
    results = list(results)
    if not results or not all(isinstance(r, RegionDensityResult) for r in results):
        raise ValueError("results must be a non-empty list of RegionDensityResult")
    attr, xlabel = _AXES[x]
    series: dict[str, list[RegionDensityResult]] = defaultdict(list)
    for r in results:
        series[r.label].append(r)
    fig = Figure(figsize=(6.0, 4.2), constrained_layout=True)
    ax = fig.add_subplot()
    allx, ally = [], []
    for label, rs in series.items():
        rs = sorted(rs, key=lambda r: getattr(r, attr))
        xs = [getattr(r, attr) for r in rs]
        scale = [r.n_neurons if per_neuron else 1 for r in rs]
        ys = [r.density / s for r, s in zip(rs, scale)]
        es = [r.density_se / s for r, s in zip(rs, scale)]
        ax.errorbar(xs, ys, yerr=np.nan_to_num(es), marker="o", ms=3, capsize=2, label=label)
        allx += xs
        ally += ys
    if x == "neurons":
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        ticks = sorted(set(allx))
        if len(ticks) <= 12:
            ax.set_xticks(ticks, [str(t) for t in ticks])
        if not per_neuron and all(v > 0 for v in ally):
            gx, gy = np.exp(np.mean(np.log(allx))), np.exp(np.mean(np.log(ally)))
            grid = np.array([min(allx), max(allx)], dtype=float)
            ax.plot(grid, gy * grid / gx, "k--", lw=0.8, label="proportional to neurons")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("boundaries per unit length" + (" per neuron" if per_neuron else ""))
    ax.legend(fontsize=7)
    ax.set_title(title or "linear-region density")
    return _save(fig, path)
