"""Grouping the rows of ``RunContext.sweep`` by config values, and error-bar lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from signalprop.experiments._stats import mean_se


def config_value(config: dict[str, Any], key: str) -> Any:
    """A TrainConfig dict's value at ``key`` (dotted keys reach into model_args etc.).

    Examples:
        >>> config_value({"model_args": {"depth": 4}, "lr": 0.1}, "model_args.depth")
        4
    """
    head, dot, sub = key.partition(".")
    return config[head][sub] if dot else config[head]


def group_metric(rows: list[dict[str, Any]], keys: Sequence[str], metric: str = "test_acc",
                 failed: float = math.nan) -> dict[tuple[Any, ...], list[float]]:
    """Per-seed values of ``metric`` grouped by the config values at ``keys``.

    A run that diverged, or never recorded the metric, contributes ``failed`` (e.g. chance
    accuracy: a network whose loss became NaN did not learn).

    Args:
        rows: what ``RunContext.sweep`` returned.
        keys: config keys (dotted allowed) that identify a group.
        metric: a final metric name ("test_acc", "train_loss", ...).
        failed: the value a diverged run or a missing metric counts as.

    Returns:
        ``{(value, ...): [per-seed values]}`` in the rows' order.

    Examples:
        >>> rows = [{"config": {"lr": 0.1}, "result": {"status": "completed",
        ...          "metrics": {"test_acc": 0.9}}},
        ...         {"config": {"lr": 0.1}, "result": {"status": "diverged", "metrics": {}}}]
        >>> group_metric(rows, ["lr"], failed=0.1)
        {(0.1,): [0.9, 0.1]}
    """
    out: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        key = tuple(config_value(row["config"], k) for k in keys)
        value = row["result"]["metrics"].get(metric)
        if row["result"]["status"] != "completed" or value is None or math.isnan(value):
            value = failed
        out.setdefault(key, []).append(float(value))
    return out


def errorbar_lines(ax: Any, xs: Sequence[Any], series: dict[str, Sequence[Sequence[float]]],
                   **kwargs: Any) -> None:
    """One line per label: mean over seeds at each x, error bars one standard error."""
    for label, per_x in series.items():
        stats = [mean_se(v) for v in per_x]
        ax.errorbar(list(xs), [m for m, _ in stats],
                    yerr=[0.0 if math.isnan(e) else e for _, e in stats], marker="o",
                    capsize=3, label=label, **kwargs)


def at_grid_edge(value: float, grid: Sequence[float]) -> bool:
    """Whether ``value`` is the smallest or largest of a grid of 3 or more values: a best
    setting there may lie outside the grid, so the grid was too narrow to find it.

    Examples:
        >>> at_grid_edge(0.1, [0.01, 0.03, 0.1]), at_grid_edge(0.03, [0.01, 0.03, 0.1])
        (True, False)
        >>> at_grid_edge(0.1, [0.1])  # a single value is a choice, not a search
        False
    """
    return len(grid) >= 3 and value in (min(grid), max(grid))
