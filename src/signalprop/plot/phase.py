"""Phase-diagram plot: the correlation depth scale xi_c over (sigma_w^2, sigma_b^2) with the
order-to-chaos boundary chi_1 = 1 drawn on top.

Uses ``matplotlib.figure.Figure`` directly (no pyplot), so it works under any backend,
including ``Agg`` on machines without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from signalprop.theory.phase import PhaseDiagram


def phase_diagram(
    result: PhaseDiagram,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    max_depth_scale: float = 1e3,
) -> Figure:
    """Draw log10 xi_c as a colour map and the chi_1 = 1 contour; save it to ``path``.

    Infinite depth scales (criticality, power laws) are shown at ``max_depth_scale``.

    Args:
        result: a :class:`~signalprop.theory.PhaseDiagram` (not recomputed here).
        path: file to write (PNG, SVG, PDF: by extension), or None to only return the figure.
        title: figure title (default: the activation's name).
        max_depth_scale: colour-scale ceiling for xi_c.

    Returns:
        The matplotlib Figure.

    Examples:
        >>> from signalprop import theory
        >>> pd = theory.phase_diagram("tanh", np.linspace(0.5, 4, 20), np.linspace(0, 0.3, 10))
        >>> fig = phase_diagram(pd, None)
        >>> len(fig.axes)
        2
    """
    if not isinstance(result, PhaseDiagram):
        raise ValueError(
            f"result must be a signalprop.theory.PhaseDiagram, got {type(result).__name__}"
        )
    if not max_depth_scale > 1:
        raise ValueError(f"max_depth_scale must be > 1, got {max_depth_scale!r}")
    xi = np.clip(np.where(np.isfinite(result.xi_c), result.xi_c, max_depth_scale),
                 1e-2, max_depth_scale)
    fig = Figure(figsize=(6.0, 4.5), constrained_layout=True)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(result.sigma_w2, result.sigma_b2, xi, shading="nearest",
                         norm=LogNorm(vmin=max(1e-2, float(xi.min())), vmax=max_depth_scale),
                         cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=r"correlation depth scale $\xi_c$ (layers)")
    if result.sigma_w2.size > 1 and result.sigma_b2.size > 1:
        ax.contour(result.sigma_w2, result.sigma_b2, result.chi_1, levels=[1.0],
                   colors="white", linewidths=1.5)
    crit = result.critical_sigma_w2
    ok = np.isfinite(crit)
    if ok.any():
        ax.plot(crit[ok], result.sigma_b2[ok], color="white", lw=0, marker=".", ms=2,
                label=r"$\chi_1 = 1$")
        ax.legend(loc="upper left", frameon=False, labelcolor="white")
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    default = f"{result.activation}: ordered (left of the line), chaotic (right)"
    ax.set_title(title if title is not None else default)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
