"""Trainer overhead vs a bare loop, and sweep throughput with 2 workers vs sequential.

1. Per-step cost of ``signalprop.train.fit`` (progress bar, metrics every 10 steps,
   checkpoint every 50 steps, NaN check, schedule) against a bare loop doing the same
   forward / backward / SGD step on the same batches of the same model. Fixed costs
   (data, model build, final evaluation) are removed by timing runs of N and 2N steps:
   per-step = (min T(2N) - min T(N)) / N, with runs interleaved and the minimum over
   repeats (other processes only ever add time, so the minimum is the least disturbed
   run). Target: overhead <= 5%.
2. Sweep throughput: the same grid of runs with ``--workers 2`` and sequentially (in this
   process), runs per second. Target: >= 1.7x on 2 free cores. Worker start-up (spawn +
   import torch) counts against the parallel sweep, as it does for a user.

    python benchmarks/bench_training.py                  # both parts
    python benchmarks/bench_training.py --part trainer --repeats 7
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def trainer_config(steps: int) -> TrainConfig:
    return TrainConfig(model="signalprop.models:resnetv2", model_args=MODEL, dataset="gaussian",
                       dataset_args=DATA, optimizer="sgd", lr=0.05, batch_size=32, steps=steps,
                       log_every=10, checkpoint_every=50, seed=0)


def time_fit(steps: int, root: Path) -> float:
    out = root / f"fit{steps}"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    fit(trainer_config(steps), out, progress=True)
    return time.perf_counter() - t0


def time_bare(steps: int) -> float:
    cfg = trainer_config(steps)
    t0 = time.perf_counter()
    data = load_dataset(cfg.dataset, **cfg.dataset_args)
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.model, **cfg.model_args)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    n, b = len(data.train), cfg.batch_size
    perm = epoch_permutation(n, cfg.seed, 0)
    model.train()
    for t in range(steps):
        x, y = data.train.batch(perm[t * b:(t + 1) * b])
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def bench_trainer(n: int, repeats: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        time_fit(10, root), time_bare(10)  # warm-up: imports, allocator
        t = {("fit", n): [], ("fit", 2 * n): [], ("bare", n): [], ("bare", 2 * n): []}
        for _ in range(repeats):
            for steps in (n, 2 * n):
                t["fit", steps].append(time_fit(steps, root))
                t["bare", steps].append(time_bare(steps))
        per_step = {k: (min(t[k, 2 * n]) - min(t[k, n])) / n for k in ("fit", "bare")}
        print(f"trainer: NF-ResNetV2 [1,1] width 0.125, batch (32, 3, 16, 16), SGD; "
              f"N={n} steps, {repeats} repeats; progress bar, metrics every 10 steps, "
              f"checkpoint every 50")
        print(f"  per step: trainer {per_step['fit'] * 1e3:.2f} ms, bare loop "
              f"{per_step['bare'] * 1e3:.2f} ms")
        print(f"  overhead ratio trainer / bare: {per_step['fit'] / per_step['bare']:.3f} "
              "(target <= 1.05)")
        spread = {k: max(v) / min(v) for k, v in t.items()}
        print(f"  noise: max/min run time over repeats {min(spread.values()):.2f}.."
              f"{max(spread.values()):.2f} (1.00 on a quiet machine)")
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
    p.add_argument("--steps", type=int, default=50, help="N for the trainer part")
    p.add_argument("--repeats", type=int, default=7)
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
