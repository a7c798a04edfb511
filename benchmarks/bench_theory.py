"""Benchmark of the theory engine against Monte Carlo (run: python benchmarks/bench_theory.py).

Prints, in one run:
1. the time per Gaussian expectation E[phi(sqrt(q) z)^2] vectorised over a batch of q values,
   and per two-dimensional expectation E[phi(u1) phi(u2)], with the measured error against
   a closed form (erf) or a finer quadrature;
2. the time for a 100 x 100 phase diagram (target: <= 1 s on 2 cores);
3. a Monte-Carlo estimate of the same expectations: its measured time per sample, the
   samples its standard error needs to match the quadrature's accuracy, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from signalprop import theory
from signalprop.theory.gaussian import gauss_expect


def best_of(fn, repeat: int = 3) -> float:  # noqa: ANN001
    fn()  # warm-up (caches, first-call imports)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=10_000, help="q values per vectorised call")
    ap.add_argument("--grid", type=int, default=100, help="phase diagram points per axis")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"cpus={os.cpu_count()}")

    # 1. one-dimensional expectations, vectorised over q
    q = 10.0 ** rng.uniform(-4, 2, args.batch)
    t_tanh = best_of(lambda: theory.expect_phi2("tanh", q))
    # accuracy: erf through the generic quadrature path vs its closed form
    erf = theory.get_activation("erf")
    quad = gauss_expect(lambda u: erf.fn(u) ** 2, q, scale=erf.scale)
    err_1d = float(np.max(np.abs(quad - theory.expect_phi2("erf", q))))
    print(f"\n1-D E[phi(sqrt(q) z)^2], batch of {args.batch} q in [1e-4, 1e2]:")
    print(f"  tanh: {t_tanh / args.batch * 1e6:.2f} us per expectation "
          f"({t_tanh * 1e3:.1f} ms per batch); max |error| (erf, vs closed form) {err_1d:.1e}")

    # two-dimensional expectations
    n2 = 200
    q2 = 10.0 ** rng.uniform(-2, 1, n2)
    c2 = rng.uniform(-1, 1, n2)
    t_2d = best_of(lambda: theory.expect_phi_phi("tanh", q2, c2), repeat=1)
    quad2 = theory.gauss_expect2(erf.fn, erf.fn, q2, c2)
    err_2d = float(np.max(np.abs(quad2 - theory.expect_phi_phi("erf", q2, c2))))
    print(f"2-D E[phi(u1) phi(u2)], {n2} (q, c) pairs: tanh {t_2d / n2 * 1e3:.2f} ms per "
          f"expectation; max |error| (erf, vs closed form) {err_2d:.1e}")

    # 2. phase diagram
    sw = np.linspace(0.5, 4.0, args.grid)
    sb = np.linspace(0.0, 0.5, args.grid)
    print(f"\n{args.grid} x {args.grid} phase diagram (chi_1 and xi_c), best of 3:")
    for name in ("tanh", "erf", "relu", "selu", "gelu"):
        t_pd = best_of(lambda name=name: theory.phase_diagram(name, sw, sb))
        flag = "ok" if t_pd <= 1.0 else "SLOWER THAN TARGET"
        print(f"  {name:5s} {t_pd:.3f} s  ({flag}: target <= 1 s)")

    # 3. Monte Carlo of equal accuracy
    z = rng.standard_normal(2_000_000)
    qm = 1.0
    t_mc = best_of(lambda: np.mean(np.tanh(np.sqrt(qm) * z) ** 2))
    per_sample = t_mc / z.size
    sigma = float(np.std(np.tanh(z) ** 2))
    target = max(err_1d, 1e-15)
    needed = (sigma / target) ** 2
    print(f"\nMonte Carlo E[tanh(z)^2]: {per_sample * 1e9:.2f} ns per sample, "
          f"sample std {sigma:.3f}")
    print(f"  to reach the quadrature's error ({target:.1e}) MC needs (std/err)^2 = "
          f"{needed:.1e} samples = {needed * per_sample:.1e} s per expectation")
    print(f"  quadrature: {t_tanh / args.batch:.1e} s per expectation -> MC / quadrature "
          f"= {needed * per_sample / (t_tanh / args.batch):.1e}")
    for eps in (1e-3, 1e-4):
        n = int((sigma / eps) ** 2)
        print(f"  (for comparison, MC at error {eps:g}: {n:.1e} samples, "
              f"{n * per_sample * 1e3:.1f} ms per expectation)")
    # the phase diagram by MC: each of the grid^2 points needs q* by iterating the q-map
    per_point_mc = 50 * (sigma / 1e-4) ** 2 * per_sample  # ~50 q-map steps at MC error 1e-4
    t_pd = best_of(lambda: theory.phase_diagram("tanh", sw, sb))
    print(f"  a {args.grid}x{args.grid} diagram by MC at error 1e-4 (50 q-map iterations per "
          f"point): ~{per_point_mc * args.grid**2:.0f} s vs {t_pd:.2f} s "
          f"(x{per_point_mc * args.grid**2 / t_pd:.0f})")


if __name__ == "__main__":
    main()
