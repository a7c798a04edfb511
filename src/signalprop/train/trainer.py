"""The training loop: resumable, deterministic in the seed, and honest about divergence.

Files in the run directory ``out`` (all optional; ``out=None`` keeps everything in memory):

- ``metrics.jsonl``: train records every ``log_every`` steps, test records after evals;
- ``checkpoint.pt``: model, optimizer and RNG state every ``checkpoint_every`` steps, on
  interruption (Ctrl-C) and at the end, written atomically;
- ``result.json``: status ("completed" or "diverged"), step, final metrics, timings.

Determinism: the model is built after ``torch.manual_seed(seed)``; the batch order of
epoch e is a permutation drawn from a generator seeded by (seed, e) (each epoch uses
floor(N / batch_size) full batches); the learning rate is a function of the step; the
global RNG state is checkpointed. A run resumed from any checkpoint therefore ends with
the same weights as the uninterrupted run.
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

from signalprop.data import ArraySplit, load_dataset
from signalprop.models import load_model
from signalprop.results import Result
from signalprop.results._base import SKIP
from signalprop.train import distributed as ddp_utils
from signalprop.train.checkpoint import CHECKPOINT, atomic_write, load_checkpoint, save_checkpoint
from signalprop.train.config import OUTPUT_FIELDS, TrainConfig
from signalprop.train.metrics import METRICS, MetricsWriter
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
def evaluate(model: nn.Module, split: ArraySplit, d: ddp_utils.Dist, batch: int = 1024
             ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on ``split`` (sharded over ranks when distributed).

    Examples:
        >>> split = ArraySplit(torch.eye(3), torch.tensor([0, 1, 2]))  # logits = the inputs
        >>> loss, accuracy = evaluate(nn.Identity(), split, ddp_utils.Dist())
        >>> round(loss, 4), accuracy  # loss = log(1 + 2 / e)
        (0.5514, 1.0)
    """
    was_training = model.training
    model.eval()
    idx = torch.arange(len(split))[d.rank::d.world_size]
    sums = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    for chunk in idx.split(batch):
        x, y = split.batch(chunk)
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
    if not d.active:  # plain floats: two scalar reads, the cheapest per-step bookkeeping
        return [loss.item() * n, float((logits.detach().argmax(dim=1) == y).sum()), float(n)]
    t = torch.stack([loss.detach().double() * n,
                     (logits.detach().argmax(dim=1) == y).sum().double(),
                     torch.tensor(float(n), dtype=torch.float64)])
    return d.all_sum(t).tolist()


def _check_resume(state: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    saved = json.loads(state["config"])
    now = cfg.to_dict()
    diff = [k for k in now if k not in OUTPUT_FIELDS and saved.get(k) != now[k]]
    if diff:
        raise ValueError(f"cannot resume from {path}: the config differs in "
                         + ", ".join(f"{k} (saved {saved.get(k)!r}, now {now[k]!r})"
                                     for k in diff))


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
        ddp: data-parallel under torchrun (gloo); ``cfg.batch_size`` is the global batch.

    Returns:
        :class:`TrainResult` (``result.model`` is the trained module).

    Examples:
        >>> cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 4,
        ...     "out_features": 3}, dataset="iris", lr=0.1, steps=20, batch_size=16)
        >>> fit(cfg, progress=False).status
        'completed'
    """
    d = ddp_utils.init_distributed() if ddp else ddp_utils.Dist()
    try:
        return _fit(cfg, Path(out) if out is not None else None, resume, progress, d)
    finally:
        ddp_utils.shutdown(d)


def _fit(cfg: TrainConfig, out: Path | None, resume: bool, progress: bool,
         d: ddp_utils.Dist) -> TrainResult:
    t_start = time.perf_counter()
    data = load_dataset(cfg.dataset, **cfg.dataset_args)
    per_epoch, total = _run_length(cfg, len(data.train), d)
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.model, **cfg.model_args)
    objective = _objective(cfg, model, data, total)
    trained = objective.module if objective is not None else model  # what is optimized
    stepper, base = build_optimizer(cfg, trained)
    run = _Run(cfg, d, out, data, trained, base, stepper, per_epoch, total, t_start)
    run.objective = objective
    if out is not None:
        run.restore(resume)
    d.barrier()  # every process has checked the directory before rank 0 writes to it
    run.open_metrics(resume)
    run.train(progress)
    result = TrainResult(run.status, run.step, total, run.final, round(run.elapsed(), 3),
                         str(out) if out is not None else None, run.resumed_from, run.message,
                         model)
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
    """(steps per epoch, total steps) for ``n`` training examples; checks the batch size."""
    bsz = cfg.batch_size
    if bsz > n:
        raise ValueError(f"batch_size={bsz} is larger than the {n} training examples of "
                         f"{cfg.dataset!r}")
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
                 total: int, t_start: float) -> None:
        self.cfg, self.d, self.out, self.data = cfg, d, out, data
        self.model, self.base, self.stepper = model, base, stepper
        self.per_epoch, self.total, self.t_start = per_epoch, total, t_start
        self.ckpt_path = out / CHECKPOINT if out is not None else None
        self.start, self.prior_seconds, self.resumed_from = 0, 0.0, None
        self.window = [0.0, 0.0, 0.0]  # loss sum, correct, count since the last train record
        self.status, self.message, self.step = "completed", "", 0
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
            state = load_checkpoint(path)
            _check_resume(state, self.cfg, path)
            self.model.load_state_dict(state["model"])
            self.base.load_state_dict(state["optimizer"])
            rngs = state["rng"]
            if len(rngs) != d.world_size:
                raise ValueError(f"{path} was written by {len(rngs)} processes; resume "
                                 f"it with the same number, not {d.world_size}")
            torch.set_rng_state(rngs[d.rank])
            self.start, self.prior_seconds = int(state["step"]), float(state["seconds"])
            self.window = [float(v) for v in state["window"]]
            self.resumed_from = self.start
        if d.is_main:
            out.mkdir(parents=True, exist_ok=True)

    def open_metrics(self, resume: bool) -> None:
        """Open ``metrics.jsonl`` (rank 0) and carry a resumed run's latest metrics."""
        path = self.out / METRICS if self.out is not None and self.d.is_main else None
        self.writer = MetricsWriter(path, keep_until_step=self.start if resume else None)
        self.final = _latest_metrics(self.writer.records)

    def checkpoint(self, step: int) -> None:
        rngs = ddp_utils.gather_objects(self.d, torch.get_rng_state())
        if self.ckpt_path is not None and self.d.is_main:
            save_checkpoint(self.ckpt_path, {
                "step": step, "model": self.model.state_dict(),
                "optimizer": self.base.state_dict(), "rng": rngs, "seconds": self.elapsed(),
                "window": list(self.window), "config": json.dumps(self.cfg.to_dict())})

    def train(self, progress: bool) -> None:
        """Run steps ``start .. total - 1``; stop at the first non-finite loss."""
        from tqdm.auto import tqdm

        cfg, n, self.step = self.cfg, len(self.data.train), self.start
        net = ddp_utils.wrap_model(self.model, self.d)
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
            if self.step > self.start:
                self.checkpoint(self.step)  # nothing is lost: --resume continues from here
            raise
        finally:
            bar.close()
            self.writer.close()

    def _step(self, net: nn.Module, t: int, epoch: int, batch: torch.Tensor, bar: Any) -> bool:
        """Step ``t`` on ``batch``, then log, evaluate, checkpoint as due; False: diverged."""
        x, y = self.data.train.batch(batch)
        lr = lr_at(t, self.cfg, self.total)
        for group in self.base.param_groups:
            group["lr"] = lr
        if self.cfg.log_effective_lr and self.invariant is None:
            self._find_invariant(x)
        if self.objective is not None:
            loss, stats = self.objective.loss(net, x, t, self.d.rank)
            if self.d.active:
                stats = self.d.all_sum(torch.tensor(stats, dtype=torch.float64)).tolist()
        else:
            logits = net(x)
            if t == self.start:
                self._check_logits(logits)
            loss = F.cross_entropy(logits, y)
            stats = _batch_stats(loss, logits, y, self.d)  # global: loss sum, correct, count
        if not math.isfinite(stats[0]):
            self.status, self.step = "diverged", t + 1
            self.message = f"loss became {stats[0] / stats[2]} at step {t + 1}"
            self.writer.write({"step": t + 1, "epoch": epoch, "split": "train",
                               "loss": stats[0] / stats[2], "lr": lr,
                               "event": "diverged", "seconds": self.elapsed()})
            return False
        self.base.zero_grad(set_to_none=True)
        loss.backward()
        self.stepper.step()
        if self.objective is not None:
            self.objective.after_step(t)
        self.step = step = t + 1
        self.window = [w + s for w, s in zip(self.window, stats)]
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

    def _check_logits(self, logits: torch.Tensor) -> None:
        classes = self.data.num_classes
        if logits.ndim != 2 or logits.shape[1] != classes:
            raise ValueError(
                f"model {self.cfg.model!r} returned logits of shape {tuple(logits.shape)}; "
                f"{self.cfg.dataset!r} needs (batch, {classes}): set "
                f"model_args.num_classes={classes} (or the factory's equivalent)")

    def _log_train(self, epoch: int, lr: float, bar: Any) -> None:
        """Write the train record of the window since the last one, and start a new window."""
        w = self.window
        rec = {"step": self.step, "epoch": epoch, "split": "train", "loss": w[0] / w[2],
               "acc": w[1] / w[2], "lr": lr, **self._effective_lr(), "seconds": self.elapsed()}
        self.writer.write(rec)
        self.final.update(train_loss=rec["loss"], train_acc=rec["acc"])
        bar.set_postfix(loss=f"{rec['loss']:.4g}", acc=f"{rec['acc']:.3f}", refresh=False)
        self.window = [0.0, 0.0, 0.0]

    def _evaluate(self, epoch: int) -> None:
        if self.objective is not None:
            metrics = self.objective.evaluate()
        else:
            test_loss, test_acc = evaluate(self.model, self.data.test, self.d)
            metrics = {"loss": test_loss, "acc": test_acc}
        self.writer.write({"step": self.step, "epoch": epoch, "split": "test", **metrics,
                           "seconds": self.elapsed()})
        self.final.update({f"test_{k}": v for k, v in metrics.items()})

    def _find_invariant(self, x: torch.Tensor) -> None:
        """Which weights the loss does not depend on the scale of (checked by doubling each
        on this batch, in train mode; the random state is left as it was)."""
        from signalprop.measure import effective_lr

        batch: Any = self.objective.views(x, 0) if self.objective is not None else x
        with torch.random.fork_rng():
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
