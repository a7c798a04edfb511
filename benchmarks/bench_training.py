"""Trainer overhead vs a bare loop, and sweep throughput with 2 workers vs sequential.

1. Per-step cost of ``signalprop.train.fit`` (progress bar, metrics every 10 steps,
   checkpoint every 50 steps, NaN check, schedule) against a bare loop doing the same
   forward / backward / SGD step on the same batches of the same model. A forward
   pre-hook stamps the time of every training forward, so each gap between stamps is one
   whole step of the loop driving the model, and set-up costs (data, model build, final
   evaluation) are left out. Runs alternate; the ratio of mean steps includes the
   cadence costs. On a busy machine these ratios wander by several percent, so a profiled
   run also reports the share of step time spent in the trainer's own bookkeeping.
   Target: overhead <= 5%.
2. Sweep throughput: the same grid of runs with ``--workers 2`` and sequentially (in this
   process), runs per second. Target: >= 1.7x on 2 free cores. Worker start-up (spawn +
   import torch) counts against the parallel sweep, as it does for a user.

    python benchmarks/bench_training.py                  # both parts
    python benchmarks/bench_training.py --part trainer --repeats 7
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from signalprop.data import load_dataset  # noqa: E402
from signalprop.models import load_model  # noqa: E402
from signalprop.sweep import SweepSpec, run_sweep  # noqa: E402
from signalprop.train import TrainConfig, epoch_permutation, fit  # noqa: E402

MODEL = {"name_or_depths": [1, 1], "norm": "nf", "stem": "cifar", "width": 0.125, "num_classes": 10}
# 128 batches per epoch: runs of up to 2N = 100 steps stay inside the first epoch, so the
# only evaluation is the final one, which the N / 2N difference cancels.
DATA = {"input_shape": [3, 16, 16], "num_classes": 10, "num_train": 4096, "num_test": 64}


STAMPS: list[float] = []  # perf_counter at every training forward of the timed model


def timed_resnet(**kwargs: object) -> torch.nn.Module:
    """The benchmark model, stamping the time of each training-mode forward call: the gap
    between two stamps is one full step of whatever loop drives it."""
    model = load_model("signalprop.models:resnetv2", **kwargs)

    def stamp(module: torch.nn.Module, args: object) -> None:
        if module.training:
            STAMPS.append(time.perf_counter())

    model.register_forward_pre_hook(stamp)
    return model


def trainer_config(steps: int) -> TrainConfig:
    return TrainConfig(model="__main__:timed_resnet", model_args=MODEL, dataset="gaussian",
                       dataset_args=DATA, optimizer="sgd", lr=0.05, batch_size=32, steps=steps,
                       log_every=10, checkpoint_every=50, seed=0)


def run_fit(steps: int, root: Path) -> list[float]:
    out = root / "fit"
    shutil.rmtree(out, ignore_errors=True)
    STAMPS.clear()
    fit(trainer_config(steps), out, progress=True)
    return [b - a for a, b in zip(STAMPS, STAMPS[1:])]


def run_bare(steps: int) -> list[float]:
    cfg = trainer_config(steps)
    data = load_dataset(cfg.dataset, **cfg.dataset_args)
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.model, **cfg.model_args)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    n, b = len(data.train), cfg.batch_size
    perm = epoch_permutation(n, cfg.seed, 0)
    model.train()
    STAMPS.clear()
    for t in range(steps):
        x, y = data.train.batch(perm[t * b:(t + 1) * b])
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return [b - a for a, b in zip(STAMPS, STAMPS[1:])]


# (file name ending, function name) of everything the trainer adds to a bare step
_BOOKKEEPING = {("std.py", "update"), ("std.py", "set_postfix"), ("trainer.py", "_batch_stats"),
                ("schedules.py", "lr_at"), ("metrics.py", "write"), ("trainer.py", "checkpoint")}


def bookkeeping_share(n: int, root: Path) -> float:
    """Time inside the trainer's own per-step functions / time of all steps, from one
    profiled run: a ratio of two times taken in the same run, so other jobs scale both."""
    prof = cProfile.Profile()
    prof.enable()
    gaps = run_fit(n, root)
    prof.disable()
    own = sum(ct for (f, _, name), (_, _, _, ct, _) in pstats.Stats(prof).stats.items()
              if (Path(f).name, name) in _BOOKKEEPING)
    return own / sum(gaps)


def bench_trainer(n: int, repeats: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        run_fit(20, root), run_bare(20)  # warm-up: imports, allocator
        gaps: dict[str, list[float]] = {"fit": [], "bare": []}
        for _ in range(repeats):  # interleaved, so drift in the machine's load hits both
            gaps["fit"] += run_fit(n, root)
            gaps["bare"] += run_bare(n)
        print(f"trainer: NF-ResNetV2 [1,1] width 0.125, batch (32, 3, 16, 16), SGD; "
              f"{repeats} x {n} steps each, interleaved; progress bar, metrics every 10 "
              "steps, checkpoint every 50")
        med = {k: statistics.median(v) for k, v in gaps.items()}
        mean = {k: statistics.mean(v) for k, v in gaps.items()}  # includes log/save steps
        print(f"  median step: trainer {med['fit'] * 1e3:.2f} ms, bare loop "
              f"{med['bare'] * 1e3:.2f} ms, ratio {med['fit'] / med['bare']:.3f}")
        print(f"  mean step (with the steps that log and checkpoint): trainer "
              f"{mean['fit'] * 1e3:.2f} ms, bare {mean['bare'] * 1e3:.2f} ms, ratio "
              f"{mean['fit'] / mean['bare']:.3f} (target <= 1.05)")
        share = bookkeeping_share(n, root)
        print(f"  profiled bookkeeping (progress bar, NaN check and running metrics, schedule, "
              f"metrics lines, checkpoints): {share * 100:.1f}% of the trainer's step time")
        q = {k: statistics.quantiles(v, n=10) for k, v in gaps.items()}
        print(f"  noise: 90th/10th percentile of bare steps {q['bare'][-1] / q['bare'][0]:.2f} "
              "(about 1.0 on a quiet machine)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_sweep(runs: int, steps: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    data = {"base": {"model": "signalprop.models:resnetv2", "model_args": MODEL,
                     "dataset": "gaussian", "dataset_args": DATA, "batch_size": 32,
                     "steps": steps, "log_every": 10},
            "grid": {"lr": [0.1 / (i + 1) for i in range(runs)]}}
    try:
        times = {}
        for label, workers in (("sequential", 1), ("--workers 2", 2)):
            spec = SweepSpec.from_dict(data, default_out=root / label.strip("-").replace(" ", ""))
            t0 = time.perf_counter()
            summary = run_sweep(spec, workers=workers, progress=False, log=lambda m: None)
            times[label] = time.perf_counter() - t0
            assert summary.counts["completed"] == runs, summary.counts
        print(f"sweep: {runs} runs of {steps} steps each")
        for label, t in times.items():
            print(f"  {label:<12} {t:7.1f} s  {runs / t:.3f} runs/s")
        print(f"  throughput ratio --workers 2 / sequential: "
              f"{times['sequential'] / times['--workers 2']:.2f} (target >= 1.7 on 2 free cores)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("trainer", "sweep", "both"), default="both")
    p.add_argument("--steps", type=int, default=100, help="steps per trainer run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--runs", type=int, default=8, help="runs in the sweep part")
    p.add_argument("--run-steps", type=int, default=150, help="steps per sweep run")
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread per process, {os.cpu_count()} CPUs visible; "
          "absolute times depend on what else runs on the machine, the ratios less so")
    if args.part in ("trainer", "both"):
        bench_trainer(args.steps, args.repeats)
    if args.part in ("sweep", "both"):
        bench_sweep(args.runs, args.run_steps)


if __name__ == "__main__":
    main()
