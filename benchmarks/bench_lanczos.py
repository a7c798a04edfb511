"""Block Lanczos (block = k, what jacobian_spectrum / hessian_extremes now use) against one
start vector (block = 1, the former method) at the same number of products: time and the
error of the k smallest and k largest values against the exact ones.

Operators: a dense symmetric matrix with a 40-fold zero eigenvalue and a 5-fold top one
(products are matrix products: the timing is the Lanczos overhead itself), and the
Jacobian of a small ResNet-like CNN whose dead ReLUs give repeated zero singular values
(products are autograd passes: the timing is what a user sees).

    python benchmarks/bench_lanczos.py
    python benchmarks/bench_lanczos.py --dim 2000 --k 8 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import lanczos


def dense_operator(dim: int) -> tuple[torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    spec = torch.cat([torch.zeros(40), torch.linspace(0.1, 3.0, dim - 45),
                      torch.full((5,), 4.0)]).double()
    return q @ torch.diag(spec) @ q.T, np.sort(spec.numpy())


def timed(f, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after one warm-up call, and the last result."""
    times, out = [], f()
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bench_dense(dim: int, k: int, steps: int, repeats: int) -> None:
    a, exact = dense_operator(dim)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return v @ a

    rows = []
    for block in (1, k):
        t, r = timed(lambda b=block: lanczos(matvec, 1, dim, steps, dtype=torch.float64,
                                             block=b), repeats)
        v = r.values[0]
        err = max(np.abs(v[:k] - exact[:k]).max(), np.abs(v[::-1][:k] - exact[::-1][:k]).max())
        rows.append((block, t, err))
    print(f"dense operator, dim {dim}, k {k}, {steps} products")
    for block, t, err in rows:
        print(f"  block {block:2d}: {t * 1e3:8.1f} ms   max error of the k extremes {err:.2e}")
    print(f"  time ratio block {k} / block 1: {rows[1][1] / rows[0][1]:.2f}")


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 8, 3, stride=2, padding=1)).eval()


def bench_jacobian(k: int, repeats: int) -> None:
    model, x = cnn(), torch.randn(2, 3, 32, 32)
    steps = max(10 * k, 40)
    t_new, new = timed(lambda: sp.jacobian_spectrum(model, x, k=k, steps=steps), repeats)
    t_old, _ = timed(lambda: sp.jacobian_spectrum(model, x, k=1, steps=steps), repeats)
    print(f"CNN Jacobian (out {new.out_dim}, in {new.in_dim}), {steps} products per example")
    print(f"  block {k} (k={k}): {t_new:.3f} s   block 1 (k=1): {t_old:.3f} s   "
          f"ratio {t_new / t_old:.2f}")
    print(f"  bottom (block {k}): {np.round(new.bottom[0], 4).tolist()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=1000)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    bench_dense(args.dim, args.k, max(10 * args.k, 40), args.repeats)
    bench_jacobian(args.k, args.repeats)


if __name__ == "__main__":
    main()
