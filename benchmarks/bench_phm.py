"""Cost of a PHM layer against the dense layer of the same size, measured side by side.

PHMLinear(512, 512, n=4) against nn.Linear(512, 512): forward + backward (input, weight
and bias gradients) at batch 256                                           target <= 1.15
and, for reference, the Kronecker composition alone (forward + backward of
``compose_weight``) as a share of the dense step, the same layer with the composition in
torch ops (what runs where the C kernel does not: GPU, double backward, torch.func), plus
PHConv2d against nn.Conv2d (64 channels, 3x3, 16x16 maps, batch 32).

Runs are interleaved (a, b, a, b, ...) so machine load drifts hit both; times are the
process's CPU time (one thread by default); ratios are medians of per-pair ratios.

    python benchmarks/bench_phm.py
    python benchmarks/bench_phm.py --repeats 41 --threads 2
    python benchmarks/bench_phm.py --batch 32 --features 64 --repeats 5   # smoke
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.nn.hypercomplex import _fused, compose_weight


class TorchOpsPHMLinear(sp.nn.PHMLinear):
    """PHMLinear with the composition in torch ops (the fallback path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, _fused.compose_torch(self.A, self.F), self.bias)


def interleaved(fns: dict[str, Callable[[], None]], repeats: int, inner: int
                ) -> dict[str, list[float]]:
    """CPU seconds per call of each function, in turn, ``repeats`` times (after a warm-up)."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            for _ in range(inner):
                fn()
            times[k].append((time.process_time() - t0) / inner)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def fwd_bwd(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--features", type=int, default=512)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--inner", type=int, default=10, help="calls per timing")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, n = args.features, args.n
    x = torch.randn(args.batch, d, requires_grad=True)
    dense, phm = nn.Linear(d, d), sp.nn.PHMLinear(d, d, n)
    phm_torch = TorchOpsPHMLinear(d, d, n)
    print(f"C composition in use: {_fused.handles(phm.A, phm.F)}")
    a, f = phm.A.detach().clone().requires_grad_(), phm.F.detach().clone().requires_grad_()
    grad = torch.randn(d, d)

    def compose() -> None:
        a.grad = f.grad = None
        compose_weight(a, f).backward(grad)

    times = interleaved({"dense": fwd_bwd(dense, x), "phm": fwd_bwd(phm, x),
                         "phm_torch": fwd_bwd(phm_torch, x), "compose": compose},
                        args.repeats, args.inner)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    print(f"threads {args.threads}, batch {args.batch}, {d} -> {d}, n = {n}; "
          f"median CPU ms per forward+backward")
    print(f"  nn.Linear {ms['dense']:.3f}   PHMLinear {ms['phm']:.3f}   "
          f"compose_weight alone {ms['compose']:.3f}")
    print(f"  PHMLinear / nn.Linear = {ratio(times, 'phm', 'dense'):.3f}   (target <= 1.15)")
    print(f"  composition share of the dense step = {ratio(times, 'compose', 'dense'):.3f}")
    print(f"  PHMLinear with the composition in torch ops / nn.Linear = "
          f"{ratio(times, 'phm_torch', 'dense'):.3f}   ({ms['phm_torch']:.3f} ms)")
    c = max(n, d // 8 // n * n)
    xc = torch.randn(max(2, args.batch // 8), c, 16, 16, requires_grad=True)
    conv, phc = nn.Conv2d(c, c, 3, padding=1), sp.nn.PHConv2d(c, c, 3, n, padding=1)
    times = interleaved({"dense": fwd_bwd(conv, xc), "phm": fwd_bwd(phc, xc)},
                        args.repeats, max(1, args.inner // 2))
    print(f"  PHConv2d / nn.Conv2d ({c} channels, 3x3, {tuple(xc.shape)}) = "
          f"{ratio(times, 'phm', 'dense'):.3f}")


if __name__ == "__main__":
    main()
