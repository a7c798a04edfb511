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
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.data import ArraySplit
from signalprop.results import Result
from signalprop.results._base import SKIP
from signalprop.train import _resume
from signalprop.train import distributed as ddp_utils
from signalprop.train._preflight import check_run
from signalprop.train.checkpoint import CHECKPOINT, atomic_write, load_checkpoint, save_checkpoint
from signalprop.train.config import TrainConfig
from signalprop.train.device import Placement, backend_for, cpu_state, resolve_device
from signalprop.train.metrics import METRICS, MetricsWriter, read_metrics
from signalprop.train.optimizers import build_optimizer
from signalprop.train.schedules import lr_at

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


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the ``n`` training examples in ``epoch`` (depends on nothing else).

    Examples:
        >>> order = epoch_permutation(5, seed=0, epoch=1)
        >>> sorted(order.tolist()), torch.equal(order, epoch_permutation(5, seed=0, epoch=1))
        ([0, 1, 2, 3, 4], True)
    """
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2)
    gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=gen)


@torch.no_grad()
def evaluate(model: nn.Module, split: ArraySplit, d: ddp_utils.Dist, batch: int = 1024, *,
             device: torch.device | str | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on ``split`` (sharded over ranks when distributed),
    in float32 on ``device`` (None: where the model's parameters are; the CPU for a model
    without any). Batches are copied there from the CPU.

    Examples:
        >>> split = ArraySplit(torch.eye(3), torch.tensor([0, 1, 2]))  # logits = the inputs
        >>> loss, accuracy = evaluate(nn.Identity(), split, ddp_utils.Dist())
        >>> round(loss, 4), accuracy  # loss = log(1 + 2 / e)
        (0.5514, 1.0)
    """
    was_training = model.training
    model.eval()
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    place = Placement(torch.device(device))
    idx = torch.arange(len(split))[d.rank::d.world_size]
    sums = torch.zeros(3, dtype=torch.float64, device=place.device)  # loss, correct, count
    for chunk in idx.split(batch):
        x, y = place.batch(*split.batch(chunk))
        out = model(x)
        sums[0] += F.cross_entropy(out, y, reduction="sum").double()
        sums[1] += (out.argmax(dim=1) == y).sum()
        sums[2] += y.numel()
    d.all_sum(sums)
    model.train(was_training)
    return float(sums[0] / sums[2]), float(sums[1] / sums[2])


def _batch_stats(loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
                 d: ddp_utils.Dist) -> list[float]:
    """[loss sum, correct, count] over the global batch (summed over processes)."""
    n = y.numel()
    if not d.active and loss.device.type == "cpu":  # two scalar reads: the cheapest here
        return [loss.item() * n, float((logits.detach().argmax(dim=1) == y).sum()), float(n)]
    # one read from the device (the same float64 numbers as above)
    t = torch.stack([loss.detach().double() * n,
                     (logits.detach().argmax(dim=1) == y).sum().double(),
                     torch.tensor(float(n), dtype=torch.float64, device=loss.device)])
    return d.all_sum(t).tolist()


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


def _latest_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """The latest train and test loss/accuracy in ``records`` (a resumed run's carry-over)."""
    final: dict[str, float] = {}
    for rec in records:
        if rec.get("split") == "train" and "acc" in rec:
            final.update(train_loss=rec["loss"], train_acc=rec["acc"])
        elif rec.get("split") == "test":
            final.update(test_loss=rec["loss"], test_acc=rec["acc"])
    return final


class _Run:
    """The state of one training run: what a checkpoint stores, a resume restores, and
    the loop advances one step at a time (``step`` counts the updates applied)."""

    def __init__(self, cfg: TrainConfig, d: ddp_utils.Dist, out: Path | None, data: Any,
                 model: nn.Module, base: torch.optim.Optimizer, stepper: Any, per_epoch: int,
                 total: int, t_start: float, place: Placement) -> None:
        self.cfg, self.d, self.out, self.data = cfg, d, out, data
        self.model, self.base, self.stepper = model, base, stepper
        self.place, self.scaler = place, place.scaler()  # a scaler for float16 only
        self.per_epoch, self.total, self.t_start = per_epoch, total, t_start
        self.ckpt_path = out / CHECKPOINT if out is not None else None
        self.start, self.prior_seconds, self.resumed_from = 0, 0.0, None
        self.window = [0.0, 0.0, 0.0]  # loss sum, correct, count since the last train record
        self.status, self.message, self.step = "completed", "", 0
        self.log_step = 0  # step of the last train record
        self.torn = False  # True while step, weights and window disagree (mid-update)
        self.final: dict[str, float] = {}
        self.writer: MetricsWriter | None = None
        self.objective: Any = None  # None: supervised cross-entropy
        self.invariant: list[str] | None = None  # scale-invariant weights (log_effective_lr)

    def elapsed(self) -> float:
        return self.prior_seconds + time.perf_counter() - self.t_start

    def restore(self, resume: bool) -> None:
        """Check the run directory; with ``resume``, load its checkpoint when present."""
        out, path, d = self.out, self.ckpt_path, self.d
        if not resume and (path.exists() or (out / METRICS).exists()):
            raise ValueError(f"{out} already holds a run; pass resume=True (--resume) to "
                             "continue it, or choose another output directory")
        if resume and path.exists():
            self._load(load_checkpoint(path))
        if d.is_main:
            out.mkdir(parents=True, exist_ok=True)

    def _load(self, state: dict[str, Any]) -> None:
        """Check the checkpoint ``state`` (fields, config, progress, history), then load it."""
        path, d = self.ckpt_path, self.d
        saved = _resume.check_fields(state, path)
        _resume.check_same_config(saved, self.cfg, path)
        # float16's scaler skips overflowing updates: the optimizer may count fewer steps
        _resume.check_progress(state, path, self.total, self.cfg.batch_size,
                               skipped_steps=self.scaler is not None)
        _resume.check_device_state(state, path, self.cfg, self.place.device)
        rngs = state["rng"]
        if len(rngs) != d.world_size:
            raise ValueError(f"{path} was written by {len(rngs)} processes; resume "
                             f"it with the same number, not {d.world_size}")
        if d.is_main:
            _resume.check_history(read_metrics(self.out / METRICS), state, path,
                                  self.out / METRICS)
        _resume.load_states(state, path, self.model, self.base)  # copied onto the device
        torch.set_rng_state(rngs[d.rank])
        self._load_device_state(state)
        self.start, self.prior_seconds = state["step"], float(state["seconds"])
        self.window = [float(v) for v in state["window"]]
        self.log_step = self.start - round(self.window[2] / self.cfg.batch_size)
        self.resumed_from = self.start

    def _load_device_state(self, state: dict[str, Any]) -> None:
        """The GPU's RNG (only onto the same kind of device) and the float16 loss scale."""
        saved = torch.device(state.get("device", "cpu"))
        if "cuda_rng" in state and saved.type == self.place.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"][self.d.rank], self.place.device)
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def open_metrics(self, resume: bool) -> None:
        """Open ``metrics.jsonl`` (rank 0) and carry a resumed run's latest metrics."""
        path = self.out / METRICS if self.out is not None and self.d.is_main else None
        self.writer = MetricsWriter(path, keep_until_step=self.start if resume else None)
        self.final = _latest_metrics(self.writer.records)

    def checkpoint(self, step: int) -> None:
        device = self.place.device
        extra: dict[str, Any] = {}  # none on the CPU: its checkpoint is as it always was
        rngs = ddp_utils.gather_objects(self.d, torch.get_rng_state())
        if device.type != "cpu":
            extra["device"] = str(device)
        if device.type == "cuda":  # collective: every rank takes part
            extra["cuda_rng"] = ddp_utils.gather_objects(self.d, torch.cuda.get_rng_state(device))
        if self.scaler is not None:
            extra["scaler"] = self.scaler.state_dict()
        if self.ckpt_path is not None and self.d.is_main:
            self.writer.sync()  # the records the checkpoint follows are on disk first
            save_checkpoint(self.ckpt_path, cpu_state({  # readable on any machine
                "step": step, "model": self.model.state_dict(),
                "optimizer": self.base.state_dict(), "rng": rngs, "seconds": self.elapsed(),
                "window": list(self.window), "config": json.dumps(self.cfg.to_dict()),
                "log_step": self.log_step, **extra}))

    def train(self, progress: bool) -> None:
        """Run steps ``start .. total - 1``; stop at the first non-finite loss."""
        from tqdm.auto import tqdm

        cfg, n, self.step = self.cfg, len(self.data.train), self.start
        net = ddp_utils.wrap_model(self.model, self.d, self.place.device)
        bar = tqdm(total=self.total, initial=self.start, disable=not (progress and self.d.is_main),
                   desc=f"train {cfg.model}", unit="step", dynamic_ncols=True, leave=False)
        perm, perm_epoch = None, -1
        net.train()
        try:
            for t in range(self.start, self.total):
                epoch, pos = divmod(t, self.per_epoch)
                if epoch != perm_epoch:
                    perm, perm_epoch = epoch_permutation(n, cfg.seed, epoch), epoch
                batch = self.d.shard(perm[pos * cfg.batch_size:(pos + 1) * cfg.batch_size])
                if not self._step(net, t, epoch, batch, bar):
                    break
                bar.update(1)
        except KeyboardInterrupt:
            # nothing is lost: --resume continues from here (unless the interrupt tore an
            # update half-way: then the last regular checkpoint stays the one to resume)
            if self.step > self.start and not self.torn:
                self.checkpoint(self.step)
            raise
        finally:
            bar.close()
            self.writer.close()

    def _step(self, net: nn.Module, t: int, epoch: int, batch: torch.Tensor, bar: Any) -> bool:
        """Step ``t`` on ``batch``, then log, evaluate, checkpoint as due; False: diverged."""
        x, y = self.place.batch(*self.data.train.batch(batch))
        lr = lr_at(t, self.cfg, self.total)
        for group in self.base.param_groups:
            group["lr"] = lr
        loss, stats = self._loss(net, x, y, t)  # stats: global loss sum, correct, count
        if not math.isfinite(stats[0]):
            self.status, self.step = "diverged", t + 1
            self.message = f"loss became {stats[0] / stats[2]} at step {t + 1}"
            self.writer.write({"step": t + 1, "epoch": epoch, "split": "train",
                               "loss": stats[0] / stats[2], "lr": lr,
                               "event": "diverged", "seconds": self.elapsed()})
            return False
        self.base.zero_grad(set_to_none=True)
        self._update(loss)
        if self.objective is not None:
            self.objective.after_step(t)
        self.step = step = t + 1
        self.window = [w + s for w, s in zip(self.window, stats)]
        self.torn = False
        cfg = self.cfg
        if step % cfg.log_every == 0 or step == self.total:
            self._log_train(epoch, lr, bar)
        epoch_end = step % self.per_epoch == 0 and cfg.eval_every == 0
        if step == self.total or epoch_end or (cfg.eval_every and step % cfg.eval_every == 0):
            self._evaluate(epoch)
            net.train()
        if step == self.total or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            self.checkpoint(step)
        return True

    def _loss(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor, t: int
              ) -> tuple[torch.Tensor, list[float]]:
        """The batch's loss and [loss sum, correct, count] over the global batch: the
        cross-entropy of the logits, or the objective's loss (BYOL: no accuracy, NaN)."""
        if self.cfg.log_effective_lr and self.invariant is None:
            self._find_invariant(x)
        if self.objective is None:
            with self.place.autocast():
                logits = net(x)
                loss = F.cross_entropy(logits, y)
            return loss, _batch_stats(loss, logits, y, self.d)
        with self.place.autocast():
            loss, stats = self.objective.loss(net, x, t, self.d.rank)
        if self.d.active:
            stats = self.d.all_sum(torch.tensor(stats, dtype=torch.float64)).tolist()
        return loss, stats

    def _update(self, loss: torch.Tensor) -> None:
        """Backward and step; with float16, through the loss scaler (which skips an update
        whose gradients overflowed, and lowers the scale)."""
        if self.scaler is None:
            loss.backward()
            self.torn = True
            self.stepper.step()
            return
        self.scaler.scale(loss).backward()
        self.torn = True
        self.scaler.step(self.stepper)  # unscales the gradients first (AGC sees true ones)
        self.scaler.update()

    def _log_train(self, epoch: int, lr: float, bar: Any) -> None:
        """Write the train record of the window since the last one, and start a new window."""
        w = self.window
        rec = {"step": self.step, "epoch": epoch, "split": "train", "loss": w[0] / w[2],
               "acc": w[1] / w[2] if self.objective is None else math.nan,  # BYOL: no labels
               "lr": lr, **self._effective_lr(), "seconds": self.elapsed()}
        self.torn = True
        self.writer.write(rec)
        self.log_step, self.window = self.step, [0.0, 0.0, 0.0]
        self.torn = False
        self.final.update(train_loss=rec["loss"], train_acc=rec["acc"])
        bar.set_postfix(loss=f"{rec['loss']:.4g}", acc=f"{rec['acc']:.3f}", refresh=False)

    def _evaluate(self, epoch: int) -> None:
        if self.objective is not None:
            metrics = self.objective.evaluate()
        else:
            test_loss, test_acc = evaluate(self.model, self.data.test, self.d,
                                           device=self.place.device)
            metrics = {"loss": test_loss, "acc": test_acc}
        self.writer.write({"step": self.step, "epoch": epoch, "split": "test", **metrics,
                           "seconds": self.elapsed()})
        self.final.update({f"test_{k}": v for k, v in metrics.items()})

    def _find_invariant(self, x: torch.Tensor) -> None:
        """Which weights the loss does not depend on the scale of (checked by doubling each
        on this batch, in train mode; the random state is left as it was)."""
        from signalprop.measure import effective_lr

        batch: Any = self.objective.views(x, 0) if self.objective is not None else x
        with torch.random.fork_rng(devices=[]):
            self.invariant = effective_lr(self.model, self.base, x=batch).invariant_names

    def _effective_lr(self) -> dict[str, float]:
        """Mean, min and max of lr / ||w||^2 over the scale-invariant weights (if logged)."""
        if not self.cfg.log_effective_lr or not self.invariant:
            return {}
        from signalprop.measure import effective_lr

        vals = [r.effective_lr for r in effective_lr(self.model, self.base).records
                if r.name in self.invariant]
        return {"eff_lr": sum(vals) / len(vals), "eff_lr_min": min(vals),
                "eff_lr_max": max(vals)}
