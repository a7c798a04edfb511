"""Training on each device: time per step of ``signalprop.train.fit`` on the CPU, on a GPU
in float32, and on a GPU with bfloat16 / float16 autocast, side by side.

The model is a CIFAR-sized ResNetV2 (CIFAR stem, 3 stages of 2 bottleneck blocks, width
0.25, BatchNorm) on Gaussian 3x32x32 inputs with 10 classes, batch 128, SGD. Each setting
trains N and 2N steps and reports (time(2N) - time(N)) / N, so data generation, model
building, the first CUDA kernels' start-up and the final evaluation cancel out; the loop
includes the trainer's own per-step costs (batch copy from pinned memory, loss check,
metrics). Settings whose device is missing are skipped. A correctness column gives each
setting's final training loss after the CPU run's 2N steps (same initial weights and
batches as the CPU run: float32 agrees to rounding, autocast to a few per cent).

    python benchmarks/bench_train_device.py                    # every available setting
    python benchmarks/bench_train_device.py --steps 5 --cpu-steps 2 --width 0.0625  # smoke
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from signalprop.train import TrainConfig, fit

SETTINGS = (("cpu", "cpu", None), ("cuda fp32", "cuda", None),
            ("cuda bf16", "cuda", "bfloat16"), ("cuda fp16", "cuda", "float16"))


def config(device: str, amp: str | None, steps: int, width: float) -> TrainConfig:
    return TrainConfig(model="resnetv2_50",
                       model_args={"name_or_depths": [2, 2, 2], "stem": "cifar", "norm": "bn",
                                   "width": width, "num_classes": 10},
                       dataset="gaussian",
                       dataset_args={"input_shape": [3, 32, 32], "num_classes": 10,
                                     "num_train": 128 * 64, "num_test": 256},
                       optimizer="sgd", lr=0.05, batch_size=128, steps=steps, log_every=10,
                       device=device, amp=amp, seed=0)


def seconds_per_step(device: str, amp: str | None, n: int, width: float, root: Path
                     ) -> tuple[float, float]:
    """(seconds per step, final train loss of the 2N-step run)."""
    times, loss = [], float("nan")
    for steps in (n, 2 * n):
        out = root / f"{device}-{amp}-{steps}"
        shutil.rmtree(out, ignore_errors=True)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fit(config(device, amp, steps, width), out, progress=False)
        times.append(time.perf_counter() - t0)
        loss = result.metrics["train_loss"]
    return (times[1] - times[0]) / n, loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="N for the GPU settings")
    p.add_argument("--cpu-steps", type=int, default=10, help="N for the CPU setting")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__}, {args.threads} CPU threads, GPU: {gpu}; ResNetV2 "
          f"[2,2,2] width {args.width} BN, batch (128, 3, 32, 32), SGD")
    root = Path(tempfile.mkdtemp(prefix="bench_device_"))
    rows: dict[str, tuple[float, float]] = {}
    try:
        fit(config("cpu", None, 2, args.width), progress=False)  # warm-up: imports
        for label, device, amp in SETTINGS:
            if device == "cuda" and not torch.cuda.is_available():
                print(f"  {label:<10} skipped (no GPU)")
                continue
            n = args.cpu_steps if device == "cpu" else args.steps
            sec, loss = seconds_per_step(device, amp, n, args.width, root)
            if device != "cpu":  # the loss at the CPU run's length, to compare
                loss = fit(config(device, amp, 2 * args.cpu_steps, args.width),
                           progress=False).metrics["train_loss"]
            rows[label] = sec, loss
            print(f"  {label:<10} {sec * 1e3:9.2f} ms/step   train loss after "
                  f"{2 * args.cpu_steps} steps {loss:.5f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for label, (sec, loss) in rows.items():
        if label == "cpu":
            continue
        vs_fp32 = rows["cuda fp32"][0] / sec if "cuda fp32" in rows else float("nan")
        print(f"  {label:<10} x{rows['cpu'][0] / sec:7.1f} the cpu's speed, x{vs_fp32:5.2f} "
              f"cuda fp32's; loss / cpu loss - 1 = {loss / rows['cpu'][1] - 1:+.2e}")


if __name__ == "__main__":
    main()
