"""Cost of spp() relative to a plain no-grad forward of the same model on the same input.

Prints, per model, the median time of each (runs interleaved so drift hits both) and the
peak memory allocated during each call, measured from the torch profiler's allocation
timeline (memory held before the call, i.e. parameters and caches, is not counted: the
ratio is that of the working memory the call adds).

    python benchmarks/bench_spp.py                       # ResNetV2-600 bn and nf, 64x64, batch 8
    python benchmarks/bench_spp.py --norms nf --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

import signalprop as sp


def peak_bytes(fn) -> int:
    """Peak of (bytes allocated - bytes freed) while ``fn`` runs, from profiler events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    timeline = []
    for e in prof.events():
        usage = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if usage:
            timeline.append((e.time_range.start, usage))
    timeline.sort()
    current = peak = 0
    for _, usage in timeline:
        current += usage
        peak = max(peak, current)
    return peak


def compare(
    model: torch.nn.Module, x: torch.Tensor, repeats: int, clock: str = "wall"
) -> dict[str, float]:
    """Median times, their per-pair ratio, and peak working memory of forward vs spp."""

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def measure() -> None:
        sp.spp(model, x)

    forward()  # warm-up (NF: builds the standardized-weight cache)
    measure()
    # "cpu": this process's CPU time, robust on a shared machine when torch uses one
    # thread (time other processes take from us is not counted).
    now = time.process_time if clock == "cpu" else time.perf_counter
    t_fwd, t_spp = [], []
    for _ in range(repeats):
        t0 = now()
        forward()
        t1 = now()
        measure()
        t2 = now()
        t_fwd.append(t1 - t0)
        t_spp.append(t2 - t1)
    m_fwd, m_spp = peak_bytes(forward), peak_bytes(measure)
    return {
        "forward_s": statistics.median(t_fwd),
        "spp_s": statistics.median(t_spp),
        "time_ratio": statistics.median(b / a for a, b in zip(t_fwd, t_spp)),
        "forward_mib": m_fwd / 2**20,
        "spp_mib": m_spp / 2**20,
        "mem_ratio": m_spp / m_fwd,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnetv2_600")
    ap.add_argument("--norms", default="bn,nf")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time (use with --threads 1 on a busy machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.model} input ({args.batch}, 3, {args.size}, {args.size}), train mode, "
          f"{args.clock} clock, median of {args.repeats}")
    print(f"{'model':<22}{'forward s':>11}{'spp s':>9}{'time ratio':>12}"
          f"{'fwd peak MiB':>14}{'spp peak MiB':>14}{'mem ratio':>11}")
    for norm in args.norms.split(","):
        torch.manual_seed(0)
        model = sp.models.create_model(args.model, norm=norm)  # train mode, as in the paper
        x = torch.randn(args.batch, 3, args.size, args.size)
        r = compare(model, x, args.repeats, args.clock)
        print(f"{args.model + ' ' + norm:<22}{r['forward_s']:>11.3f}{r['spp_s']:>9.3f}"
              f"{r['time_ratio']:>12.3f}{r['forward_mib']:>14.1f}{r['spp_mib']:>14.1f}"
              f"{r['mem_ratio']:>11.3f}")
        del model


if __name__ == "__main__":
    main()
