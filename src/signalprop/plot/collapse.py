"""Representation collapse during self-supervised training: the test records that
``signalprop.train.fit(objective="byol")`` writes (probe accuracy and the statistics of
``signalprop.collapse``) against the training step, one line per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from signalprop.plot._style import pyplot, save

_LABELS = {"acc": "linear probe accuracy", "std_ratio": "std ratio (1: isotropic)",
           "effective_rank": "effective rank", "cos_views": "cosine between views",
           "cos_examples": "cosine between examples", "dead_dims": "dead dimensions"}


def collapse_history(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    keys: Sequence[str] = ("acc", "std_ratio", "effective_rank"),
    title: str | None = None,
) -> Path:
    """One panel per statistic in ``keys``, one line per run, against the step.

    Args:
        runs: label -> metric records (``signalprop.train.read_metrics`` of a run's
            ``metrics.jsonl``); the records with ``split == "test"`` that hold a key are
            drawn.
        path: output file (.png, .svg, .pdf).
        keys: statistics of the test records (see ``signalprop.train.byol``).
        title: figure title.

    Returns:
        ``path``.

    Examples:
        >>> recs = [{"step": s, "split": "test", "acc": a, "std_ratio": r, "effective_rank": k}
        ...         for s, a, r, k in ((0, 0.7, 0.3, 9.0), (100, 0.8, 0.9, 14.0))]
        >>> collapse_history({"BN": recs}, "collapse.png").name
        'collapse.png'
    """
    if not runs:
        raise ValueError("runs must hold at least one labelled run, got none")
    unknown = [k for k in keys if k not in _LABELS]
    if unknown:
        raise ValueError(f"unknown keys {unknown}; valid: {', '.join(_LABELS)}")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.8 * len(keys), 3.2), squeeze=False,
                             layout="constrained")
    for ax, key in zip(axes[0], keys):
        for label, recs in runs.items():
            pts = [(r["step"], r[key]) for r in recs if r.get("split") == "test" and key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(_LABELS[key])
        if key == "std_ratio":
            ax.set_yscale("log")
            ax.axhline(1.0, color="grey", ls="--", lw=1)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save(fig, path)
