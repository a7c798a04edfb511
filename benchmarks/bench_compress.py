"""Depth compression costs and gains, as ratios measured side by side in one run.

1. The two-stage DP for a 50-convolution network (random latency/importance tables, a
   budget of 1000 units): median seconds over repeats                     target <= 1 s
2. A MobileNetV2-style network (circular padding) compressed by depth_compress at a
   budget of 0.7x: CPU inference of the merged network against the original, torch
   eager and torch.compile (where it works), on the same inputs:
   - "original": as built (eval, BatchNorm separate);
   - "folded":   every convolution on its own, BatchNorm folded (the plan's baseline);
   - "merged":   the compressed network.
   Ratios merged/folded and merged/original are medians of per-round ratios; the DP's
   predicted ratio is printed beside them. Weights do not change latency: the network
   is compressed untrained (importance = minus the loss on random labels).

Runs are interleaved (one round runs every network once) so machine load drifts hit all
of them; with one thread the clock is the process's CPU time. Absolute times depend on
the machine; the ratios are the result.

    python benchmarks/bench_compress.py
    python benchmarks/bench_compress.py --size 32 --batch 32 --repeats 41 --no-compile
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import signalprop as sp
from signalprop.convert.compress._dp import solve
from signalprop.convert.compress._latency import interleaved, timing_threads
from signalprop.experiments.claims.compression._brute import random_tables


def bench_dp(convs: int, repeats: int) -> None:
    rng = random.Random(0)
    seg, act, imp, drop, forced = random_tables(rng, convs)
    budget = float(seg[np.isfinite(seg)].sum()) / convs
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = solve(seg, act, imp, budget, droppable=drop, forced=forced, resolution=1000)
        times.append(time.perf_counter() - t0)
    print(f"[1] DP, {convs} convolutions, {int(drop.sum())} droppable activations, 1000 "
          f"units: median {statistics.median(times):.3f} s (target <= 1 s); "
          f"{len(sol.kept)} kept, {len(sol.boundaries) + 1} segments")


def _compiled(nets: dict[str, torch.nn.Module], x: torch.Tensor) -> dict[str, object]:
    out = {}
    for name, net in nets.items():
        try:
            c = torch.compile(net)
            with torch.no_grad():
                c(x)
            out[f"{name} (compile)"] = c
        except Exception as e:  # noqa: BLE001 -- report and go on without compile
            print(f"    torch.compile failed for {name}: {type(e).__name__}: "
                  f"{str(e).splitlines()[0][:120]}")
    return out


def bench_merged(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    net = sp.models.mobilenetv2(in_channels=3, padding_mode="circular").eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        plan = sp.convert.depth_compress(
            net, args.budget, example_input=x, importance=lambda m: -F.cross_entropy(
                m(x), y).item(), repeats=args.repeats, threads=args.threads,
            cache_dir=cache, verify=False)
        planning = time.perf_counter() - t0
    nets = {"original": net, "folded": plan.baseline().apply(net), "merged": plan.apply(net)}
    with torch.no_grad():
        err = (nets["merged"](x) - plan.apply(net, merge=False)(x)).abs().max().item()
    if args.compile:
        nets.update(_compiled(nets, x))
    fns = {k: (lambda m=m: m(x)) for k, m in nets.items()}
    with timing_threads(args.threads), torch.no_grad():
        t = interleaved(fns, args.repeats, "cpu" if args.threads == 1 else "wall")

    def ratio(a: str, b: str) -> float:
        return statistics.median(p / q for p, q in zip(t[a], t[b]))

    print(f"[2] {plan} (planned in {planning:.1f} s; max |merged - linearized| {err:.1e})")
    for k, v in t.items():
        print(f"    {k:24s} {1e3 * statistics.median(v):8.3f} ms")
    for suffix in ("", " (compile)"):
        if f"merged{suffix}" in t:
            print(f"    merged/folded{suffix}: {ratio('merged' + suffix, 'folded' + suffix):.3f}"
                  f"   merged/original{suffix}: "
                  f"{ratio('merged' + suffix, 'original' + suffix):.3f}   (predicted "
                  f"{plan.predicted_ratio:.3f}, budget {args.budget:g})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convs", type=int, default=50)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--budget", type=float, default=0.7)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} interleaved "
          "repeats")
    bench_dp(args.convs, 5)
    bench_merged(args)


if __name__ == "__main__":
    main()
