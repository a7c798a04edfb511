"""Each setting at its own learning rate: tuned on a validation split, judged on fresh seeds.

The claims that compare training methods (BN against SkipInit, NF against BN, ...) must
give each method the learning rate that suits it, chosen without the test examples:

1. **tune**: for every setting (a dict of config values: ``{"model_args.norm": "bn",
   "batch_size": 64}``), train every lr of its grid with the ``tune_seeds`` on the
   training examples less a stratified validation split, evaluating on that split
   (``dataset_args: validation_fraction, holdout="validation"``). The setting's lr is
   the one with the highest mean validation accuracy (ties: the smaller lr). A diverged
   run (non-finite loss) scores chance accuracy.
2. **judge**: train the ``judge_seeds`` (fresh seeds, not the tuning ones) at that lr on
   the same training examples and evaluate on the untouched test split
   (``holdout="test"``). These test accuracies are what a claim's ``decide`` judges; a
   diverged run scores chance and is counted apart.

Apart from whether a network trains, the tuning runs give each setting's **largest stable
learning rate**: the largest lr of its grid at which no tuning seed diverged (None when
all diverged). The dataset must accept ``validation_fraction`` and ``holdout``
(``mnist1d``, ``digits``, ``cifar10``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from signalprop.experiments._stats import mean_se

VALIDATION = 0.2  # share of each class of the training examples that picks the lr


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``base`` (TrainConfig entries) with ``values`` set; dotted keys set one entry of a
    dict field (``model_args.norm``) and leave its other entries alone.

    Examples:
        >>> with_values({"lr": 0.1, "model_args": {"depth": 2, "norm": "bn"}},
        ...             {"model_args.norm": "nf", "lr": 0.3})
        {'lr': 0.3, 'model_args': {'depth': 2, 'norm': 'nf'}}
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in values.items():
        head, dot, sub = key.partition(".")
        if dot:
            out[head] = {**out.get(head, {}), sub: value}
        else:
            out[key] = value
    return out


def run_accuracy(run: dict[str, Any], chance: float) -> float:
    """A sweep run's final held-out accuracy; ``chance`` when it diverged or recorded none.

    Examples:
        >>> run_accuracy({"result": {"status": "diverged", "metrics": {}}}, 0.1)
        0.1
    """
    status = run["result"].get("status")
    if status not in ("completed", "diverged"):
        raise RuntimeError(f"training run {run.get('history')} ended with status {status!r}: "
                           f"{run['result'].get('error') or ''}".rstrip())
    acc = run["result"]["metrics"].get("test_acc")
    if status == "diverged" or acc is None or not math.isfinite(acc):
        return float(chance)
    return float(acc)


def _diverged(run: dict[str, Any]) -> bool:
    return run["result"]["status"] == "diverged"


def _train_loss(run: dict[str, Any]) -> float:
    value = run["result"]["metrics"].get("train_loss")
    return math.inf if _diverged(run) or value is None else float(value)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", name).strip("-")


def best_and_stable(lrs: Sequence[float], val_acc: Sequence[Sequence[float]],
                    diverged: Sequence[Sequence[bool]]) -> tuple[float, float | None]:
    """The lr with the highest mean validation accuracy (ties: the smaller lr) and the
    largest lr at which no seed diverged (None if every lr diverged somewhere).

    Examples:
        >>> best_and_stable([0.1, 0.3, 1.0], [[0.5, 0.6], [0.7, 0.6], [0.1, 0.1]],
        ...                 [[False] * 2, [False, False], [True, True]])
        (0.3, 0.3)
    """
    order = sorted(range(len(lrs)), key=lambda i: lrs[i])
    means = {i: mean_se(val_acc[i])[0] for i in order}
    best = max(order, key=lambda i: (means[i], -lrs[i]))
    stable = [lrs[i] for i in order if not any(diverged[i])]
    return float(lrs[best]), (float(max(stable)) if stable else None)


def tune_then_judge(ctx: Any, name: str, base: dict[str, Any],
                    settings: dict[str, dict[str, Any]], lrs: dict[str, list[float]],
                    tune_seeds: list[int], judge_seeds: list[int] | dict[str, list[int]],
                    chance: float, validation: float = VALIDATION) -> dict[str, dict[str, Any]]:
    """Tune each setting's lr on the validation split, then judge fresh seeds on the test
    split (see the module docstring).

    Args:
        ctx: the claim's RunContext (runs go through ``ctx.sweep``: resumable, parallel).
        name: prefix of the sweeps (``<name>-tune-<setting>``, ``<name>-judge-<setting>``).
        base: TrainConfig entries shared by every run (its dataset takes
            ``validation_fraction`` and ``holdout``).
        settings: setting name -> the config values that make it (dotted keys allowed).
        lrs: setting name -> its learning-rate grid.
        tune_seeds: seeds of the tuning runs.
        judge_seeds: seeds of the judged runs (disjoint from ``tune_seeds``), or setting
            name -> its judged seeds (settings may need different numbers of seeds).
        chance: the accuracy a diverged run scores.
        validation: share of each class of the training examples used for validation.

    Returns:
        setting name -> ``{"setting", "lr_grid", "val_acc" (per lr, per tuning seed),
        "tune_diverged" (per lr, per seed), "tune_train_loss" (per lr, per seed), "lr"
        (the chosen one), "lr_at_grid_edge", "largest_stable_lr", "test_acc" (per judged
        seed), "diverged" (per judged seed), "train_loss" (per judged seed; inf when
        diverged)}``, JSON-ready.
    """
    judge = judge_seeds if isinstance(judge_seeds, dict) else dict.fromkeys(settings, judge_seeds)
    for seeds in judge.values():
        if set(tune_seeds) & set(seeds):
            raise ValueError(f"judge seeds must be fresh, not tuning seeds: {tune_seeds} and "
                             f"{seeds} share {sorted(set(tune_seeds) & set(seeds))}")
    out: dict[str, dict[str, Any]] = {}
    for cell, values in settings.items():
        cfg = with_values(base, values)
        args = dict(cfg.get("dataset_args", {}), validation_fraction=validation)
        tuned = _tune(ctx, f"{name}-tune-{_slug(cell)}",
                      {**cfg, "dataset_args": {**args, "holdout": "validation"}},
                      [float(lr) for lr in lrs[cell]], tune_seeds, chance)
        judged = ctx.sweep(f"{name}-judge-{_slug(cell)}",
                           {**cfg, "lr": tuned["lr"], "dataset_args": {**args, "holdout": "test"}},
                           {}, list(judge[cell]))
        judged = sorted(judged, key=lambda r: r["config"]["seed"])
        out[cell] = {"setting": dict(values), **tuned,
                     "test_acc": [run_accuracy(r, chance) for r in judged],
                     "diverged": [_diverged(r) for r in judged],
                     "train_loss": [_train_loss(r) for r in judged]}
    return out


def _tune(ctx: Any, name: str, cfg: dict[str, Any], grid: list[float], seeds: list[int],
          chance: float) -> dict[str, Any]:
    """One setting's tuning sweep: every lr of ``grid`` x ``seeds`` on validation."""
    runs = ctx.sweep(name, cfg, {"lr": grid}, list(seeds))
    per_lr = [sorted((r for r in runs if float(r["config"]["lr"]) == lr),
                     key=lambda r: r["config"]["seed"]) for lr in grid]
    val = [[run_accuracy(r, chance) for r in rs] for rs in per_lr]
    div = [[_diverged(r) for r in rs] for rs in per_lr]
    best, stable = best_and_stable(grid, val, div)
    return {"lr_grid": grid, "val_acc": val, "tune_diverged": div,
            "tune_train_loss": [[_train_loss(r) for r in rs] for rs in per_lr],
            "lr": best, "lr_at_grid_edge": len(grid) > 1 and best in (min(grid), max(grid)),
            "largest_stable_lr": stable}


def lr_panel(ax: Any, xs: Sequence[float], series: dict[str, list[dict[str, Any]]],
             xlabel: str) -> None:
    """Each series' tuned lr (solid) and largest stable lr (dashed) against ``xs``, on
    log axes (``series``: label -> the :func:`tune_then_judge` entries at each x); an x
    whose every tuning lr diverged leaves a gap in the dashed line."""
    for (label, entries), marker in zip(series.items(), "os^dv"):
        line, = ax.plot(xs, [e["lr"] for e in entries], marker=marker, label=f"{label}: tuned")
        stable = [math.nan if e["largest_stable_lr"] is None else e["largest_stable_lr"]
                  for e in entries]
        ax.plot(xs, stable, marker=marker, ls="--", color=line.get_color(), alpha=0.6,
                label=f"{label}: largest stable")
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="learning rate")
    ax.set_title("reported, not judged", fontsize=9)
    ax.legend(fontsize=7)
