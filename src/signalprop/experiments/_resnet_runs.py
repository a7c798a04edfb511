"""Shared pieces of the ResNet-training claims (normfree/, optimization/sgd_noise): the
digits ResNet, reading sweep runs, grouping them over seeds, picking the best learning
rate per batch size, and error-bar panels.

Every claim here trains pre-activation ResNet-V2s (``signalprop.models.resnetv2``, CIFAR
stem) on scikit-learn's 8x8 digits as 1x8x8 images (1438 train / 359 test examples, ten
classes, chance 0.1): the one real image dataset that ships offline with the library's
dependencies. Runs go through ``RunContext.sweep`` so ``--full`` parallelizes.

A diverged run (non-finite loss) scores chance accuracy and an infinite training loss:
failing to train is a result, not a missing value.

Learning rates can be chosen without looking at the test set: with ``validation`` set,
:func:`digits_resnet` trains on the training examples less a stratified validation split
(``signalprop.data.tables.digits_indices``) and the runs evaluate on that validation
split; :func:`sweep_best_lr` picks each setting's lr by mean validation accuracy and then
reports the test accuracy of exactly those trained models (read back from their final
checkpoints).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from signalprop.experiments import _rows
from signalprop.experiments._rows import errorbar_lines
from signalprop.experiments._stats import mean_se

CHANCE = 0.1  # ten balanced digit classes
MOMENTUM = 0.9
VALIDATION = 0.2  # share of each class of the training examples used to choose the lr
#: The recipe shared by the claims that pick each batch size's lr with :func:`lr_search`.
LR_SEARCH_SETUP: dict[str, Any] = {
    "momentum": MOMENTUM, "schedule": "cosine", "dataset": "digits 1x8x8",
    "validation_fraction": VALIDATION, "lr_chosen_on": "validation accuracy",
    "judged_on": "test accuracy"}
# how each sweep key appears in a measurement's name ("bn/B64/lr0.1")
_CELL = {"model_args.norm": "{}", "batch_size": "B{}", "lr": "lr{:g}"}


def digits_resnet(depths: Sequence[int], norm: str, width: float = 0.125,
                  validation: float | None = None) -> dict[str, Any]:
    """TrainConfig entries for a ResNetV2 on 1x8x8 digits (a sweep's ``base`` mapping).

    Args:
        depths: bottleneck blocks per stage.
        norm: the blocks' normalization (``bn``, ``skipinit``, ``nf`` ...).
        width: channel multiplier.
        validation: if set, this share of each class of the training examples is held out
            and the runs evaluate on it instead of on the test split.

    Examples:
        >>> digits_resnet([2], "bn")["model_args"]["stem"]
        'cifar'
        >>> digits_resnet([2], "bn", validation=0.2)["dataset_args"]["holdout"]
        'validation'
    """
    data_args: dict[str, Any] = {"as_image": True}
    if validation is not None:
        data_args.update(validation_fraction=validation, holdout="validation")
    return {
        "model": "resnetv2_50",
        "model_args": {"name_or_depths": list(depths), "stem": "cifar", "norm": norm,
                       "width": width, "in_chans": 1, "num_classes": 10},
        "dataset": "digits",
        "dataset_args": data_args,
        "optimizer": "sgd",
        "momentum": MOMENTUM,
        "schedule": "cosine",
    }


def config_value(run: dict[str, Any], key: str) -> Any:
    """A config value of a sweep run: ``"lr"``, ``"batch_size"`` or ``"model_args.norm"``.

    Lists (``name_or_depths``) come back as tuples so they can key a dict.

    Examples:
        >>> config_value({"config": {"model_args": {"name_or_depths": [2]}}},
        ...              "model_args.name_or_depths")
        (2,)
    """
    value = _rows.config_value(run["config"], key)
    return tuple(value) if isinstance(value, list) else value


def status(run: dict[str, Any]) -> str:
    """``completed`` or ``diverged``; any other status (a crash) is an error here."""
    s = run["result"].get("status")
    if s not in ("completed", "diverged"):
        detail = run["result"].get("error") or run["result"].get("message") or ""
        raise RuntimeError(f"training run {run.get('history')} ended with status {s!r}: "
                           f"{detail}".rstrip())
    return str(s)


def metric(run: dict[str, Any], key: str) -> float:
    """A final metric (``test_acc``, ``train_loss`` ...) of a sweep run; NaN if absent."""
    value = run["result"]["metrics"].get(key)
    return math.nan if value is None else float(value)


def accuracy(run: dict[str, Any]) -> float:
    """Final test accuracy; a diverged run scores chance."""
    if status(run) == "diverged":
        return CHANCE
    acc = metric(run, "test_acc")
    return acc if math.isfinite(acc) else CHANCE


def run_dir(run: dict[str, Any]) -> Path:
    """The run's directory (its metrics.jsonl, checkpoint.pt and result.json)."""
    return Path(run["history"]).parent


def validated(run: dict[str, Any]) -> bool:
    """Whether the run evaluated on a validation split (its test split is untouched)."""
    return run["config"]["dataset_args"].get("holdout") == "validation"


def evaluate_final(run: dict[str, Any], split: str) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the run's final model on ``split``.

    Rebuilds the model from the run's config, loads its final checkpoint and evaluates
    in eval mode on ``"train"`` (the examples it trained on) or ``"test"`` (the test
    split, also for a run that evaluated on a validation split while training).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    import torch

    from signalprop.data import load_dataset
    from signalprop.models import load_model
    from signalprop.train import TrainConfig, evaluate, load_checkpoint
    from signalprop.train.distributed import Dist

    cfg = TrainConfig.from_dict(run["config"])
    args = dict(cfg.dataset_args)
    if "holdout" in args:
        args["holdout"] = "test"
    data = load_dataset(cfg.dataset, **args)
    model = load_model(cfg.model, **cfg.model_args)
    model.load_state_dict(load_checkpoint(run_dir(run) / "checkpoint.pt")["model"])
    with torch.no_grad():
        return evaluate(model, data.train if split == "train" else data.test, Dist())


def final_test_accuracy(run: dict[str, Any]) -> float:
    """Final accuracy on the test split (read back if the run evaluated on validation)."""
    if not validated(run) or status(run) == "diverged":
        return accuracy(run)
    acc = evaluate_final(run, "test")[1]
    return acc if math.isfinite(acc) else CHANCE


def by_seed(runs: Iterable[dict[str, Any]], keys: Sequence[str],
            value: Callable[[dict[str, Any]], float]) -> dict[tuple, list[float]]:
    """``{(config values of keys): [value of each seed, in seed order]}``."""
    groups: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    for run in runs:
        key = tuple(config_value(run, k) for k in keys)
        groups[key].append((config_value(run, "seed"), value(run)))
    return {k: [v for _, v in sorted(vals)] for k, vals in groups.items()}


def best_by_mean(values: dict[Any, list[float]]) -> Any:
    """The key whose values have the highest mean (ties: the first key in order)."""
    return max(values, key=lambda k: mean_se(values[k])[0])


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``{"values": [...], "mean": m, "se": s}`` (``se`` is NaN for one seed)."""
    m, s = mean_se(values)
    return {"values": [float(v) for v in values], "mean": m, "se": s}


def fmt(mean: float, se: float, digits: int = 3) -> str:
    """``"0.953 +- 0.004"`` (``+- nan`` with one seed)."""
    return f"{mean:.{digits}f} +- {se:.{digits}f}"


def best_lr(acc: dict[tuple, list[float]]) -> dict[tuple, tuple[float, list[float]]]:
    """Per setting, the learning rate with the highest mean test accuracy over seeds.

    Args:
        acc: ``{(*setting, lr): [per-seed accuracy]}`` (the lr last in each key).

    Returns:
        ``{setting: (best lr, [per-seed accuracy at it])}``.

    Examples:
        >>> best_lr({("bn", 0.1): [0.5, 0.6], ("bn", 0.3): [0.7, 0.7]})
        {('bn',): (0.3, [0.7, 0.7])}
    """
    per: dict[tuple, dict[float, list[float]]] = defaultdict(dict)
    for key, values in acc.items():
        per[key[:-1]][key[-1]] = values
    out = {}
    for setting, by_lr in per.items():
        lr = best_by_mean(dict(sorted(by_lr.items())))
        out[setting] = (lr, by_lr[lr])
    return out


def at_best_lr(runs: Iterable[dict[str, Any]], keys: Sequence[str],
               best: dict[tuple, tuple[float, list[float]]]) -> list[dict[str, Any]]:
    """The runs whose lr is their setting's best (``best`` keyed by the values of ``keys``).

    Examples:
        >>> runs = [{"config": {"batch_size": 8, "lr": lr}} for lr in (0.1, 0.2)]
        >>> at_best_lr(runs, ["batch_size"], {(8,): (0.2, [0.9])})[0]["config"]["lr"]
        0.2
    """
    return [r for r in runs
            if best[tuple(config_value(r, k) for k in keys)][0] == config_value(r, "lr")]


def sweep_best_lr(ctx: Any, name: str, base: dict[str, Any], grid: dict[str, list[Any]],
                  seeds: list[int]) -> tuple[list[dict[str, Any]], dict[tuple, list[float]],
                                             dict[tuple, tuple[float, list[float]]]]:
    """Run ``grid`` (its last key must be ``lr``) and pick the best lr per setting.

    The runs' own held-out accuracy picks the lr: validation accuracy when ``base`` comes
    from ``digits_resnet(..., validation=...)``, else test accuracy.

    Returns:
        (runs, ``{(*grid values): [per-seed held-out accuracy]}``, ``{setting: (best lr,
        [per-seed test accuracy at it])}``; the test accuracies are read back from the
        chosen runs' checkpoints when the lr was picked on validation).
    """
    if list(grid)[-1] != "lr":
        raise ValueError(f"the grid's last key must be 'lr', got {list(grid)}")
    runs = ctx.sweep(name, base, grid, seeds)
    keys = list(grid)
    acc = by_seed(runs, keys, accuracy)
    best = best_lr(acc)
    if base.get("dataset_args", {}).get("holdout") == "validation":
        test = by_seed(at_best_lr(runs, keys[:-1], best), keys[:-1], final_test_accuracy)
        best = {setting: (lr, test[setting]) for setting, (lr, _) in best.items()}
    return runs, acc, best


def cell(keys: Sequence[str], values: Sequence[Any]) -> str:
    """The name of a sweep setting in the measurements: ``"bn/B64/lr0.1"``.

    Examples:
        >>> cell(["model_args.norm", "batch_size", "lr"], ["bn", 64, 0.1])
        'bn/B64/lr0.1'
        >>> cell(["batch_size"], [8])
        'B8'
    """
    return "/".join(_CELL[k].format(v) for k, v in zip(keys, values))


def lr_search(ctx: Any, name: str, batches: Sequence[int], base: Callable[[int], dict],
              grid: Callable[[int], dict[str, list[Any]]], seeds: list[int],
              loss: Callable[[dict[str, Any]], float] | None = None) -> dict[str, Any]:
    """One sweep per batch size over its own lr grid; each setting's lr by :func:`sweep_best_lr`.

    Args:
        ctx: the claim's RunContext.
        name: the sweeps are called ``<name>-B<batch>``.
        batches: the batch sizes.
        base: ``base(batch)``, the sweep's TrainConfig entries at that batch size.
        grid: ``grid(batch)``, its grid: ``batch_size: [batch]`` and ``lr`` last.
        seeds: the seeds of every setting.
        loss: a run's training loss (default: its last recorded ``train_loss``).

    Returns:
        JSON-ready measurements keyed by :func:`cell`: ``val_acc`` (per (setting, lr), the
        held-out accuracy that chose the lr, summarized), ``best`` (per setting: ``lr`` and
        the test accuracies of its seeds, summarized), ``train_loss_at_best_lr`` and
        ``best_lr_at_grid_edge`` (the settings whose best lr is the first or last of a
        grid of two or more).
    """
    loss = loss or (lambda run: metric(run, "train_loss"))
    out: dict[str, Any] = {"val_acc": {}, "best": {}, "train_loss_at_best_lr": {},
                           "best_lr_at_grid_edge": []}
    for b in batches:  # one sweep per batch size: each has its own lr grid (and budget)
        g = grid(b)
        keys = list(g)
        runs, acc, best = sweep_best_lr(ctx, f"{name}-B{b}", base(b), g, seeds)
        losses = by_seed(at_best_lr(runs, keys[:-1], best), keys[:-1], loss)
        out["val_acc"].update({cell(keys, k): summary(v) for k, v in sorted(acc.items())})
        for setting, (lr, values) in best.items():
            key = cell(keys[:-1], setting)
            out["best"][key] = {"lr": lr, **summary(values)}
            out["train_loss_at_best_lr"][key] = summary(losses[setting])
            if len(g["lr"]) > 1 and lr in (g["lr"][0], g["lr"][-1]):
                out["best_lr_at_grid_edge"].append(key)
    out["best_lr_at_grid_edge"].sort()
    return out


def accuracy_vs_batch(ax: Any, batches: Sequence[int], best: dict[str, dict[str, Any]],
                      norms: dict[str, str], title: str) -> None:
    """Test accuracy at the best lr against batch size, one error-bar line per norm
    (``best`` as :func:`lr_search` measures it)."""
    for norm, label in norms.items():
        errorbar_lines(ax, batches, {label: [best[f"{norm}/B{b}"]["values"] for b in batches]})
    ax.axhline(CHANCE, color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("test accuracy at best lr")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
