"""Benchmark of exact linear-region counting (run: python benchmarks/bench_regions.py).

Prints, in one run:
1. exact counting along ``--lines`` segments through a 784-256-256-256-10 ReLU MLP
   (between random pairs of N(0, 1) inputs): time, breakpoints, breakpoints per second;
2. uniform sampling side by side on ``--sample-lines`` of those segments, at the coarsest
   resolution that finds the same count (spacing just below the smallest gap between
   breakpoints, so every piece holds a sample and no interval holds two breakpoints; its
   count is checked to agree), against exact counting of the same segments; the ratio
   of times per segment (target: exact >= 10x faster);
3. every region of a 2-D slice of a 2-64-64-64-1 network (the input plane), on a square
   doubled until the count changes by at most 0.1% (far-away vertices of bent boundaries
   keep adding a few regions): regions and time (target: <= 5 s on 2 cores).

``--small`` runs a few-second version (784-32-32-32-10, 2-16-16-16-1) to check the script.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn as nn

from signalprop.measure import linear_regions, plane_regions


def mlp(sizes: list[int], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)  # torch's default initialization
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def sample_count(net: nn.Sequential, start: torch.Tensor, end: torch.Tensor, n: int,
                 chunk: int = 1 << 15) -> int:
    """Pieces seen by n + 1 uniform samples (float64 forward like the exact count, so the
    two see the same signs; ReLU patterns from hooks)."""
    pats: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: pats.append(o > 0))
             for m in net if isinstance(m, nn.ReLU)]
    changes, last = 0, None
    try:
        for s in range(0, n + 1, chunk):
            t = torch.arange(s, min(n + 1, s + chunk), dtype=torch.float64) / n
            x = start + t[:, None] * (end - start)
            pats.clear()
            with torch.no_grad():
                net(x)
            p = torch.cat(pats, 1)
            if last is not None:
                p = torch.cat([last, p])
            changes += int((p[1:] != p[:-1]).any(1).sum())
            last = p[-1:]
    finally:
        for h in hooks:
            h.remove()
    return changes + 1


def bench_lines(sizes: list[int], lines: int, sample_lines: int) -> None:
    net = mlp(sizes, seed=0)
    net64 = mlp(sizes, seed=0).double()
    gen = torch.Generator().manual_seed(1)
    starts = torch.randn(lines, sizes[0], generator=gen)
    ends = torch.randn(lines, sizes[0], generator=gen)
    linear_regions(net, starts[:2], end=ends[:2], check=False)  # warm-up
    t0 = time.perf_counter()
    r = linear_regions(net, starts, end=ends, check=False)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    linear_regions(net, starts, end=ends, check=True)
    t_checked = time.perf_counter() - t0
    bps = sum(r.n_breakpoints)
    arch = "-".join(map(str, sizes))
    print(f"\n1. exact counting, {arch} ReLU MLP, {lines} segments (|end - start| ~ "
          f"{float(torch.tensor(r.lengths).mean()):.1f}):")
    print(f"   {t_exact:.2f} s, {bps} breakpoints ({bps / lines:.0f} per segment), "
          f"{bps / t_exact:,.0f} breakpoints/s (with the affine check: {t_checked:.2f} s)")

    k = min(sample_lines, lines)
    t0 = time.perf_counter()
    mine = linear_regions(net, starts[:k], end=ends[:k], check=False)
    t_exact_k = time.perf_counter() - t0
    t_sample, agree, samples = 0.0, 0, 0
    for i in range(k):
        seg = mine.segment(i).breakpoints
        gaps = torch.diff(torch.tensor([0.0, *seg, 1.0], dtype=torch.float64))
        n = int(1.01 / float(gaps.min())) + 1
        samples += n + 1
        t0 = time.perf_counter()
        count = sample_count(net64, starts[i].double(), ends[i].double(), n)
        t_sample += time.perf_counter() - t0
        agree += count == mine.counts[i]
    print(f"\n2. side by side on {k} segments: exact {t_exact_k:.3f} s; uniform sampling at "
          f"the resolution that finds the same count ({samples / k:,.0f} samples per segment "
          f"on average; count agrees on {agree}/{k}) {t_sample:.2f} s")
    ratio = t_sample / t_exact_k
    per_line = t_exact / lines
    print(f"   sampling / exact = {ratio:.0f}x on the same segments; per segment in the full "
          f"batch: exact {per_line * 1e3:.1f} ms vs sampling {t_sample / k * 1e3:.0f} ms "
          f"({t_sample / k / per_line:.0f}x) -- target >= 10x")


def bench_plane(sizes: list[int]) -> None:
    net = mlp(sizes, seed=0)
    plane_regions(net, torch.zeros(1, 2))  # warm-up
    half, prev = 4.0, -1
    while True:
        t0 = time.perf_counter()
        r = plane_regions(net, torch.zeros(1, 2), bounds=(-half, half, -half, half),
                          check=False)
        dt = time.perf_counter() - t0
        print(f"   square [-{half:g}, {half:g}]^2: {r.count} regions in {dt:.2f} s")
        if abs(r.count - prev) <= 1e-3 * r.count or half >= 4096:
            break
        prev, half = r.count, 2 * half
    flag = "ok" if dt <= 5.0 else "SLOWER THAN TARGET"
    print(f"   {'-'.join(map(str, sizes))} network, [-{half:g}, {half:g}]^2: {r.count} regions "
          f"in {dt:.2f} s ({flag}: target <= 5 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=256, help="segments counted exactly")
    ap.add_argument("--sample-lines", type=int, default=8,
                    help="segments also counted by uniform sampling")
    ap.add_argument("--small", action="store_true", help="a few-second check of the script")
    args = ap.parse_args()
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")
    if args.small:
        bench_lines([784, 32, 32, 32, 10], min(args.lines, 16), min(args.sample_lines, 2))
        print("\n3. 2-D slice:")
        bench_plane([2, 16, 16, 16, 1])
        return
    bench_lines([784, 256, 256, 256, 10], args.lines, args.sample_lines)
    print("\n3. 2-D slice:")
    bench_plane([2, 64, 64, 64, 1])


if __name__ == "__main__":
    main()
