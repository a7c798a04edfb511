"""Checking that a run can start: the data loads, the model builds and takes the data.

``fit`` calls :func:`check_run` before it touches the run directory, and a sweep calls it
once per distinct model and dataset before any run starts, so a mistake in a config is
one line naming what does not fit, not a traceback from inside the training loop (or the
same failure recorded for every run of a sweep).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from signalprop._forward import buffers_restored, call_model, locate_failure
from signalprop.data import DatasetSplits, load_dataset
from signalprop.models import load_model
from signalprop.train.config import TrainConfig


def build_model(cfg: TrainConfig) -> nn.Module:
    """``cfg.model`` built with ``cfg.model_args`` after ``torch.manual_seed(cfg.seed)``.

    Raises:
        ValueError: "model <name>: ..." for an unknown preset, a module that does not
            import, arguments the factory rejects, or any exception the factory raises
            (its type and message; the original is chained).

    Examples:
        >>> cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 0,
        ...     "out_features": -1}, dataset="iris", steps=1)
        >>> build_model(cfg)
        Traceback (most recent call last):
        ...
        ValueError: model torch.nn:Linear: the factory raised RuntimeError: Trying to create ...
    """
    torch.manual_seed(cfg.seed)
    try:
        return load_model(cfg.model, **cfg.model_args)
    except ValueError as e:
        raise ValueError(f"model {cfg.model}: {e}") from e
    except Exception as e:  # noqa: BLE001 -- the user's factory raised: say what, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"model {cfg.model}: the factory raised {type(e).__name__}: "
                         f"{first}") from e


def check_run(cfg: TrainConfig) -> tuple[DatasetSplits, nn.Module]:
    """Load ``cfg``'s dataset, build its model as :func:`fit` does and pass two training
    examples through it (in eval mode, without gradients; buffers and random state are
    left as they were): the checks a run must pass before it starts.

    Returns:
        ``(data, model)``: the dataset and the freshly initialized model.

    Raises:
        ValueError: an unknown dataset or dataset option; a batch larger than the
            training split; a model that cannot be built
            (see :func:`build_model`); a forward that fails (names the module and the
            input shape it received); logits that are not ``(batch, num_classes)`` (for
            the supervised objective; a self-supervised one needs a tensor (batch, ...)).
        DatasetNotFoundError: a user-supplied dataset (CIFAR-10) is not where it was
            looked for.
        ImportError: an optional package the dataset needs is missing.

    Examples:
        >>> cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 4,
        ...     "out_features": 2}, dataset="iris", batch_size=16, steps=1)
        >>> check_run(cfg)
        Traceback (most recent call last):
        ...
        ValueError: model torch.nn:Linear returned logits of shape (2, 2); 'iris' needs ...
    """
    data = load_dataset(cfg.dataset, **cfg.dataset_args)
    if cfg.batch_size > len(data.train):
        raise ValueError(f"batch_size={cfg.batch_size} is larger than the {len(data.train)} "
                         f"training examples of {cfg.dataset!r}")
    model = build_model(cfg)
    x, _ = data.train.batch(torch.arange(min(2, cfg.batch_size)))
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), buffers_restored(model):
            model.eval()  # no dropout draws, no batch statistics: nothing a run would see
            out = call_model(model, x)
    except Exception as e:  # noqa: BLE001 -- reported as the module that failed
        raise ValueError(f"model {cfg.model} does not take {cfg.dataset} examples of shape "
                         f"{tuple(data.input_shape)}: {locate_failure(model, x, e)}") from e
    finally:
        model.train()
    classes = data.num_classes
    if cfg.objective != "supervised":  # a self-supervised encoder: any embedding per example
        if not isinstance(out, torch.Tensor) or out.ndim < 2:
            raise ValueError(f"model {cfg.model} must return a tensor (batch, ...) of "
                             f"embeddings for objective {cfg.objective!r}, got "
                             f"{type(out).__name__}")
        return data, model
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != classes:
        got = f"logits of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else (
            f"a {type(out).__name__}, not a tensor of logits")
        raise ValueError(f"model {cfg.model} returned {got}; {cfg.dataset!r} needs (batch, "
                         f"{classes}): set model_args.num_classes={classes} (or the "
                         "factory's equivalent)")
    return data, model
