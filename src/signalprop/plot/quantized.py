"""Figures of low-precision training: ReSTE's indicators over training, and the stationary
laws of stochastic rounding vs BinaryConnect."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from signalprop.plot._style import pyplot, save
from signalprop.results.quantized import EstimatorIndicatorsResult, RoundingChainResult


def estimator_indicators(results: Sequence[EstimatorIndicatorsResult], path: str | Path,
                         title: str | None = None) -> Path:
    """Estimating error and gradient instability (sums over layers) against training steps.

    One line per label (e.g. one per estimator or value of o), through that label's results
    in step order; results without a ``step`` are placed by their order.

    Args:
        results: :class:`~signalprop.results.EstimatorIndicatorsResult` objects.
        path: output file (.png, .svg, .pdf).
        title: figure title.

    Returns:
        The written path.

    Examples:
        >>> from signalprop.results import EstimatorIndicatorsResult, LayerIndicators
        >>> rs = [EstimatorIndicatorsResult("reste", [LayerIndicators("fc", 0, "reste",
        ...       5.0 - s, 0.1 * s, 0.1, 64)], step=s) for s in range(4)]
        >>> estimator_indicators(rs, "/tmp/signalprop_doctest_indicators.png").suffix
        '.png'
    """
    results = list(results)
    if not results or not all(isinstance(r, EstimatorIndicatorsResult) for r in results):
        raise ValueError("results must be a non-empty sequence of EstimatorIndicatorsResult")
    series: dict[str, list[tuple[float, float, float]]] = {}
    for i, r in enumerate(results):
        x = float(r.step) if r.step is not None else float(i)
        series.setdefault(r.label, []).append((x, r.estimating_error, r.gradient_instability))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, pts in series.items():
        pts.sort()
        xs = [p[0] for p in pts]
        axes[0].plot(xs, [p[1] for p in pts], marker="o", ms=3, label=label)
        axes[1].plot(xs, [p[2] for p in pts], marker="o", ms=3, label=label)
    axes[0].set_title("estimating error  sum ||g(w) - sign(w)||")
    axes[1].set_title("gradient instability  sum Var(|dL/dw|)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def rounding_chains(results: Sequence[RoundingChainResult], path: str | Path,
                    title: str | None = None) -> Path:
    """Stationary distributions over the grid, one panel per scheme, one line per lr.

    Args:
        results: :class:`~signalprop.results.RoundingChainResult` objects (any schemes).
        path: output file (.png, .svg, .pdf).
        title: figure title.

    Returns:
        The written path.

    Examples:
        >>> from signalprop.results import RoundingChainResult
        >>> rs = [RoundingChainResult(f"sr {lr}", "sr", lr, 1.0, [-1.0, 0.0, 1.0],
        ...                           [0.5, 0.2, 0.3]) for lr in (0.1, 0.01)]
        >>> rounding_chains(rs, "/tmp/signalprop_doctest_chains.png").suffix
        '.png'
    """
    results = list(results)
    if not results or not all(isinstance(r, RoundingChainResult) for r in results):
        raise ValueError("results must be a non-empty sequence of RoundingChainResult")
    schemes = list(dict.fromkeys(r.scheme for r in results))
    names = {"sr": "stochastic rounding (SR)", "r": "deterministic rounding (R)",
             "bc": "BinaryConnect (BC)"}
    plt = pyplot()
    fig, axes = plt.subplots(1, len(schemes), figsize=(5.2 * len(schemes), 3.8), squeeze=False,
                             sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, scheme in zip(axes[0], schemes):
        mine = sorted((r for r in results if r.scheme == scheme), key=lambda r: -r.lr)
        for k, r in enumerate(mine):
            color = cmap(k / max(1, len(mine) - 1))
            ax.plot(r.grid, r.stationary, marker="o", ms=3, color=color, label=f"lr={r.lr:g}")
        ax.set_title(names.get(scheme, scheme))
        ax.set_xlabel("w (grid point the model uses)")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("stationary probability")
    if title:
        fig.suptitle(title)
    return save(fig, path)
