"""Convolution spectra and orthogonal convolutions: speed and accuracy, side by side.

Four parts (``--part``), each printing ratios in one run:

* ``dense``: ``conv_spectrum`` (FFT, one SVD per frequency) on a circular 3x3 conv,
  16 -> 16 channels, 16 x 16 input, against the SVD of the explicit 4096 x 4096 operator
  (built by applying the layer to every basis vector): time ratio and the largest error.
* ``peers``: sigma_max of several layers by signalprop, orthogonium (Sedghi's exact FFT
  for circular stride-1 layers; Delattre et al.'s Gram-iteration bounds) and deel-torchlip
  (power iteration on the reshaped kernel times its Lipschitz coefficient, a bound), with
  the exact value where one exists and the time per layer
  (``pip install --no-deps orthogonium deel-torchlip``; missing peers are skipped).
* ``resnet``: ``conv_spectra`` on every convolution of ResNetV2-50 at 32 x 32 (both stems).
* ``ortho``: ``OrthoConv2d`` (both constructions, ``bcop`` and ``cayley``) against a plain
  circular ``Conv2d`` of the same shape, interleaved, in CPU time, median [quartiles] of
  per-pair ratios: the training step (forward + backward, weights only and with the input
  gradient), the eval forward (the orthogonal operator cached), and the Cayley part of the
  Cayley layer's step alone (its floor).

    python benchmarks/bench_conv_spectra.py                      # everything, 2 threads
    python benchmarks/bench_conv_spectra.py --part peers --threads 1 --repeats 3
    python benchmarks/bench_conv_spectra.py --part ortho --threads 1 --repeats 15
    python benchmarks/bench_conv_spectra.py --small              # a smoke run
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import conv_spectrum


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls (after one warm-up) and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def dense_svd(conv: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    n = math.prod(shape)
    with torch.no_grad():
        a = conv(torch.eye(n, dtype=torch.float64).reshape(n, *shape)).reshape(n, -1).T
    return torch.linalg.svdvals(a)


def part_dense(repeats: int, small: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular", bias=False).double()
    shape = (16, 16, 16)
    t_fft, res = timed(lambda: conv_spectrum(conv, shape), repeats)
    t_dense, ref = timed(lambda: dense_svd(conv, shape), max(1, repeats // 3))
    ours = res.singular_values
    rel = float(((ours - ref).abs() / ref.clamp_min(1e-300)).max())
    rel_max = float((ours - ref).abs().max() / ref[0])
    print("== conv_spectrum vs dense SVD: circular 3x3, 16 -> 16, N = 16 (4096 x 4096) ==")
    print(f"fft {t_fft * 1e3:9.2f} ms   dense {t_dense * 1e3:9.1f} ms   speed-up "
          f"{t_dense / t_fft:7.0f}x   (target >= 100x)")
    print(f"max relative error per value {rel:.2e}, relative to sigma_max {rel_max:.2e} "
          "(target <= 1e-10)\n")


def _peers() -> dict[str, Callable[..., float] | None]:
    out: dict[str, Callable[..., float] | None] = {"orthogonium": None, "torchlip": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from orthogonium.layers.conv.AOC.fast_block_ortho_conv import (
                conv_singular_values_numpy,
            )
            from orthogonium.layers.conv.singular_values import delattre24

        def ortho(conv: nn.Conv2d, shape: tuple[int, ...]) -> float:
            w = conv.weight.detach()
            if conv.padding_mode == "circular" and conv.stride == (1, 1):
                return float(conv_singular_values_numpy(
                    w.numpy()[None], shape[1:])[1])  # Sedghi et al.: exact
            if conv.padding_mode == "circular":
                return float(delattre24.compute_delattre2023(w.clone(), n=shape[1], n_iter=6))
            return float(delattre24.compute_delattre2024(w.clone(), n_iter=4))  # theirs: 4

        out["orthogonium"] = ortho
    except ImportError:
        pass
    try:
        from deel.torchlip.normalizers import spectral_normalization
        from deel.torchlip.utils.lconv_norm import compute_lconv_coef

        def lip(conv: nn.Conv2d, shape: tuple[int, ...]) -> float:
            w = conv.weight.detach().flatten(1)
            _, _, sigma = spectral_normalization(w, None, eps=1e-10, maxiter=1000)
            coef = compute_lconv_coef(conv.kernel_size, (1, *shape), conv.stride,
                                      conv.padding_mode)
            return float(sigma) / float(coef)

        out["torchlip"] = lip
    except ImportError:
        pass
    return out


LAYERS = [  # (description, layer, input shape)
    ("circular 3x3 64->64 N=32", lambda: nn.Conv2d(64, 64, 3, padding=1,
                                                   padding_mode="circular"), (64, 32, 32)),
    ("circular 3x3 s2 32->64 N=32", lambda: nn.Conv2d(32, 64, 3, stride=2, padding=1,
                                                      padding_mode="circular"), (32, 32, 32)),
    ("zeros 3x3 16->16 N=16", lambda: nn.Conv2d(16, 16, 3, padding=1), (16, 16, 16)),
    ("zeros 3x3 64->64 N=32", lambda: nn.Conv2d(64, 64, 3, padding=1), (64, 32, 32)),
    ("zeros 3x3 s2 64->128 N=16", lambda: nn.Conv2d(64, 128, 3, stride=2, padding=1),
     (64, 16, 16)),
]


def part_peers(repeats: int, small: bool) -> None:
    peers = _peers()
    print("== sigma_max per layer: value (time) ==")
    print(f"{'layer':28s} {'signalprop':>26s} {'orthogonium':>22s} {'deel-torchlip':>22s}")
    for desc, make, shape in LAYERS:
        torch.manual_seed(0)
        conv = make()
        t_ours, res = timed(partial(conv_spectrum, conv, shape, values=False), repeats)
        lo, hi = res.sigma_max_bounds
        kind = "exact" if res.exact else f"in [{lo:.4f}, {hi:.4f}]"
        tag = "exact" if res.exact else "upper"
        cells = [f"{hi:.5f} {tag} ({t_ours * 1e3:.1f} ms)"]
        for name in ("orthogonium", "torchlip"):
            fn = peers[name]
            if fn is None:
                cells.append("not installed")
                continue
            t, val = timed(partial(fn, conv, shape), repeats)
            cells.append(f"{val:.5f} ({t * 1e3:.1f} ms)")
        print(f"{desc:28s} {cells[0]:>26s} {cells[1]:>22s} {cells[2]:>22s}", flush=True)
        if not res.exact:
            print(f"{'':28s} (signalprop certifies sigma_max in {kind[3:]})")
    print("signalprop: the exact value, or its certified upper bound (bounds layers); a "
          "smaller upper bound is tighter\n")


def part_resnet(repeats: int, small: bool) -> None:
    threads = torch.get_num_threads()
    print(f"== conv_spectra on every conv of ResNetV2-50 at 32 x 32 ({threads} thread(s): "
          f"{threads} layer(s) at a time) ==")
    for stem in ("imagenet", "cifar"):
        model = sp.models.create_model("resnetv2_50", norm="nf", stem=stem,
                                       **({"width": 0.25} if small else {}))
        x = torch.randn(1, 3, 32, 32)
        res = sp.conv_spectra(model, x)  # warm-up
        cpu, wall = [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            sp.conv_spectra(model, x)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        methods: dict[str, int] = {}
        for r in res.records:
            methods[r.method] = methods.get(r.method, 0) + 1
        print(f"stem {stem:8s}: {len(res.records)} convs, wall {_spread(wall)} s, CPU "
              f"{_spread(cpu)} s (target <= 2 s wall on 2 cores, default stem); {methods}")
    print("(CPU counts every worker; on a busy machine wall time also counts the waits for "
          "a core)\n")


def _spread(v: list[float]) -> str:
    """median [min-max]"""
    return f"{statistics.median(v):.2f} [{min(v):.2f}-{max(v):.2f}]"


def _ratios(times: dict[str, list[float]], a: str, b: str) -> str:
    """median [quartiles] of the per-pair ratios a / b"""
    r = sorted(x / y for x, y in zip(times[a], times[b]))
    return f"{statistics.median(r):5.2f} [{r[len(r) // 4]:.2f}-{r[(3 * len(r)) // 4]:.2f}]"


def _steps(plain: nn.Module, bcop: nn.Module, cay: nn.Module, x: torch.Tensor
           ) -> dict[str, Callable[[], Any]]:
    """The runs timed side by side, for the plain conv and both constructions: training
    steps (weights only, as for a first layer, and with the input gradient, as inside a
    network), eval forwards, and the Cayley part of the Cayley layer's step alone (LU,
    solve, its backward: no FFT, no layout)."""
    from signalprop.nn.orthogonal import _spectral

    xg = x.clone().requires_grad_(True)
    grid = tuple(n // s for n, s in zip(x.shape[2:], cay.stride))
    h, rest, tall = cay._system(cay._taps(grid))
    h, rest = h.detach(), None if rest is None else rest.detach()
    f = grid[0] * (grid[1] // 2 + 1)
    cp = cay.in_channels * cay.stride[0] * cay.stride[1]
    # the layer's right-hand sides: (F, G, C', B), frequency-major, columns contiguous
    xs = torch.randn(f, x.shape[0], 1, cp, dtype=torch.complex64).permute(0, 2, 3, 1)

    def cayley_alone() -> None:
        hh = h.clone().requires_grad_(True)
        out = _spectral.apply(hh, rest, tall, xs)
        torch.autograd.backward(out, torch.ones_like(out))

    def infer(layer: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                layer(x)
        return run

    runs: dict[str, Callable[[], Any]] = {}
    for name, layer in (("conv", plain), ("bcop", bcop), ("cayley", cay)):
        runs[name] = partial(_train_step, layer, x)
        runs[f"{name}_in"] = partial(_train_step, layer, xg)
        runs[f"{name}_eval"] = infer(layer)
    runs["cayley_alone"] = cayley_alone
    return runs


def _train_step(layer: nn.Module, x: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(x).square().mean().backward()


ORTHO_SHAPES = ((16, 16, 1, 32, 64), (64, 64, 1, 32, 32), (64, 64, 1, 32, 128),
                (32, 128, 2, 32, 32), (32, 128, 2, 32, 128), (128, 128, 1, 16, 32),
                (256, 256, 1, 8, 32))


def part_ortho(repeats: int, small: bool) -> None:
    from bench_toolkit import interleaved  # CPU-time side by side, as the other benchmarks

    print(f"== OrthoConv2d / Conv2d (same shape, circular 3x3): {repeats} interleaved runs, "
          "CPU time, median [quartiles] of per-pair ratios ==")
    cols = ("train", "train, input grad", "eval")
    print(f"{'C -> M, stride, batch x C x N x N':34s} {'conv ms':>8s} "
          + " ".join(f"{'bcop ' + c:>22s}" for c in cols) + " "
          + " ".join(f"{'cayley ' + c:>24s}" for c in cols) + f" {'Cayley alone':>17s}")
    for c, m, s, n, b in ORTHO_SHAPES[:2] if small else ORTHO_SHAPES:
        torch.manual_seed(0)
        b = 4 if small else b
        x = torch.randn(b, c, n, n)
        plain = nn.Conv2d(c, m, 3, stride=s, padding=1, padding_mode="circular")
        bcop = sp.nn.OrthoConv2d(c, m, 3, stride=s, construction="bcop")
        cay = sp.nn.OrthoConv2d(c, m, 3, stride=s, construction="cayley")
        t = interleaved(_steps(plain, bcop, cay, x), repeats)
        desc = f"{c:3d} -> {m:3d}, s{s}, {b:3d} x {c} x {n} x {n}"
        row = [f"{desc:34s} {statistics.median(t['conv']) * 1e3:8.1f}"]
        for name, width in (("bcop", 22), ("cayley", 24)):
            for suffix in ("", "_in", "_eval"):
                row.append(f"{_ratios(t, name + suffix, 'conv' + suffix):>{width}s}")
        row.append(f"{_ratios(t, 'cayley_alone', 'conv'):>17s}")
        print(" ".join(row), flush=True)
    print("train: forward + backward (target <= 3x); bcop: the kernel composed from c x c "
          "matrices (c = max(M, C S^2)) and one conv2d of the space-to-depth input; Cayley "
          "alone: the LU of the min(M, C S^2)-sized system at every frequency, the solve with "
          "the batch as right-hand sides and their backward, against the conv's training "
          "step: the floor of that parametrization\n")


PARTS = {"dense": part_dense, "peers": part_peers, "resnet": part_resnet,
         "ortho": part_ortho}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--small", action="store_true", help="a seconds-long smoke run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} repeats\n")
    for name, fn in PARTS.items():
        if args.part in (name, "all") and not (args.small and name in ("dense", "peers")):
            fn(args.repeats, args.small)


if __name__ == "__main__":
    main()
