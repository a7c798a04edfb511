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
* ``ortho``: ``OrthoConv2d`` forward + backward against a plain ``Conv2d`` of the same shape.

    python benchmarks/bench_conv_spectra.py                      # everything, 2 threads
    python benchmarks/bench_conv_spectra.py --part peers --threads 1 --repeats 3
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


def part_dense(repeats: int) -> None:
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


def part_peers(repeats: int) -> None:
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


def part_resnet(repeats: int) -> None:
    print("== conv_spectra on every conv of ResNetV2-50 at 32 x 32 ==")
    for stem in ("imagenet", "cifar"):
        model = sp.models.create_model("resnetv2_50", norm="nf", stem=stem)
        x = torch.randn(1, 3, 32, 32)
        t, res = timed(partial(sp.conv_spectra, model, x), repeats)
        methods: dict[str, int] = {}
        for r in res.records:
            methods[r.method] = methods.get(r.method, 0) + 1
        print(f"stem {stem:8s}: {len(res.records)} convs in {t:.2f} s (target <= 2 s with "
              f"the default stem); methods {methods}")
    print()


def _train_step(layer: nn.Module, x: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(x).square().mean().backward()


def part_ortho(repeats: int) -> None:
    print("== OrthoConv2d forward + backward vs Conv2d (same shape) ==")
    for c, m, s, n, b in ((16, 16, 1, 32, 64), (64, 64, 1, 32, 32), (64, 64, 1, 32, 128),
                          (32, 128, 2, 32, 32), (32, 128, 2, 32, 128)):
        torch.manual_seed(0)
        x = torch.randn(b, c, n, n)
        plain = nn.Conv2d(c, m, 3, stride=s, padding=1, padding_mode="circular")
        ortho = sp.nn.OrthoConv2d(c, m, 3, stride=s)

        t_plain, _ = timed(partial(_train_step, plain, x), repeats)
        t_ortho, _ = timed(partial(_train_step, ortho, x), repeats)
        print(f"{c:3d} -> {m:3d}, stride {s}, {b} x {c} x {n} x {n}: conv "
              f"{t_plain * 1e3:7.1f} ms  ortho {t_ortho * 1e3:7.1f} ms  ratio "
              f"{t_ortho / t_plain:5.2f}x (target <= 3x)")
    print("OrthoConv2d costs two FFTs of the input and one Cayley solve per frequency "
          "(size min(M, C S^2), the batch as right-hand sides), forward and backward: the "
          "solve's cost does not grow with the batch, the conv's does\n")


PARTS = {"dense": part_dense, "peers": part_peers, "resnet": part_resnet,
         "ortho": part_ortho}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}\n")
    for name, fn in PARTS.items():
        if args.part in (name, "all"):
            fn(args.repeats)


if __name__ == "__main__":
    main()
