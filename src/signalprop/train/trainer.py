"""The training loop: resumable, deterministic in the seed, and honest about divergence.

Files in the run directory ``out`` (all optional; ``out=None`` keeps everything in memory):

- ``metrics.jsonl``: train records every ``log_every`` steps, test records after evals;
- ``checkpoint.pt``: model, optimizer and RNG state every ``checkpoint_every`` steps, on
  interruption (Ctrl-C) and at the end, written atomically;
- ``result.json``: status ("completed" or "diverged"), step, final metrics, timings.

Determinism: the model is built after ``torch.manual_seed(seed)``; the batch order of
epoch e is a permutation drawn from a generator seeded by (seed, e) (each epoch uses
floor(N / batch_size) full batches); the learning rate is a function of the step; the
global RNG state (and on CUDA the GPU's) is checkpointed. A run resumed from any checkpoint
on the device it was written on therefore ends with the same weights as the uninterrupted
run; resumed on another device it continues correctly, with that device's arithmetic.

Devices (``cfg.device``, see :mod:`signalprop.train.device`): the model, batches, loss,
metrics and evaluation live on the device; the data stays in CPU memory and each batch is
copied over; checkpoints hold CPU tensors. On the CPU the run is exactly what it was
before devices existed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from signalprop.results import Result
from signalprop.results._base import SKIP
from signalprop.train import distributed as ddp_utils
from signalprop.train._preflight import check_run
from signalprop.train._run import _Run
from signalprop.train.checkpoint import atomic_write
from signalprop.train.config import TrainConfig
from signalprop.train.device import Placement, backend_for, resolve_device
from signalprop.train.optimizers import build_optimizer

RESULT = "result.json"
STATUSES = ("completed", "diverged")


@dataclass
class TrainResult(Result):
    """How a run ended. ``step`` counts updates applied; for a diverged run it is the
    1-based step whose loss was non-finite (that update was not applied). The trained
    ``model`` is attached but not written by ``to_json()`` / ``save()``.

    Examples:
        >>> r = TrainResult("completed", 10, 10, {"test_acc": 0.9}, 1.5)
        >>> TrainResult.from_json(r.to_json()).metrics
        {'test_acc': 0.9}
    """

    status: str
    step: int
    total_steps: int
    metrics: dict[str, float]
    seconds: float
    out: str | None = None
    resumed_from: int | None = None
    message: str = ""
    device: str = "cpu"  # where it ran ("auto" resolved)
    model: nn.Module | None = field(default=None, repr=False, compare=False, metadata=SKIP)


def fit(cfg: TrainConfig, out: str | Path | None = None, *, resume: bool = False,
        progress: bool = True, ddp: bool = False) -> TrainResult:
    """Train the model ``cfg`` describes on its dataset; return how the run ended.

    Minimizes the mean cross-entropy over mini-batches with the configured optimizer and
    learning-rate schedule. A non-finite loss stops the run with status "diverged".

    Args:
        cfg: the run (model, data, optimizer, schedule, length, seed, cadence).
        out: run directory for metrics, checkpoints and the result (None: no files).
        resume: continue from ``out/checkpoint.pt`` when present (else start afresh);
            without it, an ``out`` that already holds a run is an error.
        progress: show a progress bar with the running loss and accuracy.
        ddp: data-parallel under torchrun (gloo on the CPU; nccl on CUDA, one GPU per
            process by its LOCAL_RANK); ``cfg.batch_size`` is the global batch.

    Returns:
        :class:`TrainResult` (``result.model`` is the trained module, on ``cfg.device``).

    Raises:
        ValueError: a device this machine lacks (before any file is written), a bad
            config, data or model (see :func:`check_run`), or a foreign run directory.

    Examples:
        >>> cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 4,
        ...     "out_features": 3}, dataset="iris", lr=0.1, steps=20, batch_size=16)
        >>> fit(cfg, progress=False).status
        'completed'
    """
    place = Placement(resolve_device(cfg.device,
                                     local_rank=ddp_utils.local_rank() if ddp else None),
                      cfg.amp)
    if place.device.type == "cuda":
        torch.cuda.set_device(place.device)  # nccl and bare .cuda() calls use this GPU
    d = ddp_utils.init_distributed(backend_for(place.device)) if ddp else ddp_utils.Dist()
    try:
        return _fit(cfg, Path(out) if out is not None else None, resume, progress, d, place)
    finally:
        ddp_utils.shutdown(d)


def _fit(cfg: TrainConfig, out: Path | None, resume: bool, progress: bool,
         d: ddp_utils.Dist, place: Placement) -> TrainResult:
    t_start = time.perf_counter()
    data, model = check_run(cfg)  # before any file is touched: a bad config is one line
    model = place.model(model)  # built on the CPU: the same initial weights everywhere
    per_epoch, total = _run_length(cfg, len(data.train), d)
    objective = _objective(cfg, model, data, total)
    # what is optimized, checkpointed and wrapped: the model, or the objective's module
    trained = place.model(objective.module) if objective is not None else model
    stepper, base = build_optimizer(cfg, trained)
    run = _Run(cfg, d, out, data, trained, base, stepper, per_epoch, total, t_start, place)
    run.objective = objective
    if out is not None:
        run.restore(resume)
    d.barrier()  # every process has checked the directory before rank 0 writes to it
    run.open_metrics(resume)
    run.train(progress)
    result = TrainResult(run.status, run.step, total, run.final, round(run.elapsed(), 3),
                         str(out) if out is not None else None, run.resumed_from, run.message,
                         str(place.device), model=model)
    if out is not None and d.is_main:
        text = json.dumps({**result.to_dict(), "config": cfg.to_dict(),
                           "run_key": cfg.run_key()}, indent=1, allow_nan=False)
        atomic_write(out / RESULT, lambda f: f.write(text), mode="w")
    return result


def _objective(cfg: TrainConfig, model: nn.Module, data: Any, total: int) -> Any:
    """None for the supervised cross-entropy (the loop's own), else the objective object
    (``module``, ``loss``, ``after_step``, ``evaluate``; see ``signalprop.train.byol``)."""
    if cfg.objective == "supervised":
        return None
    from signalprop.train.byol import BYOLObjective

    return BYOLObjective(model, data, cfg.seed, cfg.objective_args, total)


def _run_length(cfg: TrainConfig, n: int, d: ddp_utils.Dist) -> tuple[int, int]:
    """(steps per epoch, total steps) for ``n >= batch_size`` training examples."""
    bsz = cfg.batch_size
    if bsz % d.world_size:
        raise ValueError(f"batch_size={bsz} must be divisible by the {d.world_size} processes")
    per_epoch = n // bsz
    return per_epoch, cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
