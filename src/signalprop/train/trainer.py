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
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    data = load_dataset(cfg.dataset, **cfg.dataset_args)
    n, bsz = len(data.train), cfg.batch_size
    if bsz > n:
        raise ValueError(f"batch_size={bsz} is larger than the {n} training examples of "
                         f"{cfg.dataset!r}")
    if bsz % d.world_size:
        raise ValueError(f"batch_size={bsz} must be divisible by the {d.world_size} processes")
    per_epoch = n // bsz
    total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.model, **cfg.model_args)
    stepper, base = build_optimizer(cfg, model)

    ckpt_path = out / CHECKPOINT if out is not None else None
    start, prior_seconds, resumed_from = 0, 0.0, None
    window = [0.0, 0.0, 0.0]  # loss sum, correct, count since the last train record
    if out is not None:
        if not resume and (ckpt_path.exists() or (out / METRICS).exists()):
            raise ValueError(f"{out} already holds a run; pass resume=True (--resume) to "
                             "continue it, or choose another output directory")
        if resume and ckpt_path.exists():
            state = load_checkpoint(ckpt_path)
            _check_resume(state, cfg, ckpt_path)
            model.load_state_dict(state["model"])
            base.load_state_dict(state["optimizer"])
            rngs = state["rng"]
            if len(rngs) != d.world_size:
                raise ValueError(f"{ckpt_path} was written by {len(rngs)} processes; resume "
                                 f"it with the same number, not {d.world_size}")
            torch.set_rng_state(rngs[d.rank])
            start, prior_seconds = int(state["step"]), float(state["seconds"])
            window = [float(v) for v in state["window"]]
            resumed_from = start
        if d.is_main:
            out.mkdir(parents=True, exist_ok=True)
    d.barrier()  # every process has checked the directory before rank 0 writes to it
    writer = MetricsWriter(out / METRICS if out is not None and d.is_main else None,
                           keep_until_step=start if resume else None)
    final: dict[str, float] = {}
    for rec in writer.records:  # a resumed run carries its latest metrics forward
        if rec.get("split") == "train" and "acc" in rec:
            final.update(train_loss=rec["loss"], train_acc=rec["acc"])
        elif rec.get("split") == "test":
            final.update(test_loss=rec["loss"], test_acc=rec["acc"])
    net = ddp_utils.wrap_model(model, d)

    def elapsed() -> float:
        return prior_seconds + time.perf_counter() - t_start

    def checkpoint(step: int) -> None:
        rngs = ddp_utils.gather_objects(d, torch.get_rng_state())
        if ckpt_path is not None and d.is_main:
            save_checkpoint(ckpt_path, {
                "step": step, "model": model.state_dict(), "optimizer": base.state_dict(),
                "rng": rngs, "seconds": elapsed(), "window": list(window),
                "config": json.dumps(cfg.to_dict())})

    status, message, step = "completed", "", start
    bar = tqdm(total=total, initial=start, disable=not (progress and d.is_main),
               desc=f"train {cfg.model}", unit="step", dynamic_ncols=True, leave=False)
    perm, perm_epoch = None, -1
    net.train()
    try:
        for t in range(start, total):
            epoch, pos = divmod(t, per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(n, cfg.seed, epoch), epoch
            x, y = data.train.batch(d.shard(perm[pos * bsz:(pos + 1) * bsz]))
            lr = lr_at(t, cfg, total)
            for group in base.param_groups:
                group["lr"] = lr
            logits = net(x)
            if t == start and (logits.ndim != 2 or logits.shape[1] != data.num_classes):
                raise ValueError(
                    f"model {cfg.model!r} returned logits of shape {tuple(logits.shape)}; "
                    f"{cfg.dataset!r} needs (batch, {data.num_classes}): set "
                    f"model_args.num_classes={data.num_classes} (or the factory's equivalent)")
            loss = F.cross_entropy(logits, y)
            stats = _batch_stats(loss, logits, y, d)  # global batch: loss sum, correct, count
            if not math.isfinite(stats[0]):
                status, step = "diverged", t + 1
                message = f"loss became {stats[0] / stats[2]} at step {t + 1}"
                writer.write({"step": t + 1, "epoch": epoch, "split": "train",
                              "loss": stats[0] / stats[2], "lr": lr,
                              "event": "diverged", "seconds": elapsed()})
                break
            base.zero_grad(set_to_none=True)
            loss.backward()
            stepper.step()
            step = t + 1
            window = [w + s for w, s in zip(window, stats)]
            if step % cfg.log_every == 0 or step == total:
                rec = {"step": step, "epoch": epoch, "split": "train",
                       "loss": window[0] / window[2], "acc": window[1] / window[2],
                       "lr": lr, "seconds": elapsed()}
                writer.write(rec)
                final.update(train_loss=rec["loss"], train_acc=rec["acc"])
                bar.set_postfix(loss=f"{rec['loss']:.4g}", acc=f"{rec['acc']:.3f}", refresh=False)
                window = [0.0, 0.0, 0.0]
            epoch_end = step % per_epoch == 0 and cfg.eval_every == 0
            if step == total or epoch_end or (cfg.eval_every and step % cfg.eval_every == 0):
                test_loss, test_acc = evaluate(model, data.test, d)
                writer.write({"step": step, "epoch": epoch, "split": "test", "loss": test_loss,
                              "acc": test_acc, "seconds": elapsed()})
                final.update(test_loss=test_loss, test_acc=test_acc)
                net.train()
            if step == total or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                checkpoint(step)
            bar.update(1)
    except KeyboardInterrupt:
        if step > start:
            checkpoint(step)  # nothing is lost: --resume continues from here
        raise
    finally:
        bar.close()
        writer.close()
    result = TrainResult(status, step, total, final, round(elapsed(), 3),
                         str(out) if out is not None else None, resumed_from, message, model)
    if out is not None and d.is_main:
        text = json.dumps({**result.to_dict(), "config": cfg.to_dict(),
                           "run_key": cfg.run_key()}, indent=1, allow_nan=False)
        atomic_write(out / RESULT, lambda f: f.write(text), mode="w")
    return result
