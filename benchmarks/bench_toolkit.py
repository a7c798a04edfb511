"""Costs of the normalizer-free toolkit, as ratios measured side by side in one run.

1. CPU training step (forward, backward, SGD step) of ResNetV2-50, CIFAR stem, 32x32,
   batch 32: norm="nf" / norm="bn"                                        target <= 1.0
2. Eval forward of fold_ws(NF ResNetV2-50) / the identical plain-conv network
   (norm="none": act -> nn.Conv2d, same shapes)                           target <= 1.02
3. AGC: extra time per NF training step (clip_gradients alone, and the whole step with
   AGC(SGD) against SGD) as a fraction of the step                          target <= 5%

Runs are interleaved (a, b, a, b, ...) so machine load drifts hit both; times are the
process's CPU time (with one thread, the compute itself: waiting for a busy core is not
counted); ratios are medians of per-pair ratios. Absolute times depend on the machine;
the ratios are the result.

    python benchmarks/bench_toolkit.py
    python benchmarks/bench_toolkit.py --repeats 9 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import signalprop as sp


def clock() -> float:
    """CPU time of this process: on a shared machine, time spent waiting for a core is not
    counted (wall time is, and swings with other users' load)."""
    return time.process_time()


def interleaved(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """CPU times of each function, run in turn ``repeats`` times after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = clock()
            fn()
            times[k].append(clock() - t0)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def model(norm: str, width: float) -> torch.nn.Module:
    torch.manual_seed(0)
    return sp.models.resnetv2("resnetv2_50", norm=norm, stem="cifar", num_classes=10,
                              width=width)


def train_step_fn(net: torch.nn.Module, opt, x, y) -> Callable[[], None]:
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    print(f"ResNetV2-50 cifar stem, width {args.width}, input {tuple(x.shape)}, "
          f"{args.threads} thread(s), {args.repeats} interleaved repeats, CPU seconds; "
          f"torch {torch.__version__}")

    # 1. training step, nf vs bn
    nf, bn = model("nf", args.width).train(), model("bn", args.width).train()
    steps = {
        "nf": train_step_fn(nf, torch.optim.SGD(nf.parameters(), lr=1e-3, momentum=0.9), x, y),
        "bn": train_step_fn(bn, torch.optim.SGD(bn.parameters(), lr=1e-3, momentum=0.9), x, y),
    }
    t = interleaved(steps, args.repeats)
    print(f"[1] train step  nf {statistics.median(t['nf']):.3f}s  bn "
          f"{statistics.median(t['bn']):.3f}s  ratio nf/bn {ratio(t, 'nf', 'bn'):.3f} "
          "(target <= 1.0)")
    del bn, steps

    # 2. eval forward: fold_ws(nf) vs the identical plain-conv network
    nf.eval()
    folded = sp.convert.fold_ws(nf)
    plain = model("none", args.width).eval().requires_grad_(False)
    with torch.no_grad():
        err = (folded(x) - nf(x)).abs().max().item()

    def fwd(net: torch.nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                net(x)

        return run

    t = interleaved({"folded": fwd(folded), "plain": fwd(plain), "nf": fwd(nf)},
                    2 * args.repeats)
    print(f"[2] eval fwd    folded {statistics.median(t['folded']):.3f}s  plain "
          f"{statistics.median(t['plain']):.3f}s  nf (unfolded, cached WS) "
          f"{statistics.median(t['nf']):.3f}s  ratio folded/plain "
          f"{ratio(t, 'folded', 'plain'):.3f} (target <= 1.02); max |folded - nf| {err:.2e}")
    del folded, plain

    # 3. AGC overhead on the NF training step
    nf.train()
    sgd = torch.optim.SGD(nf.parameters(), lr=1e-3, momentum=0.9)
    agc = sp.optim.AGC(torch.optim.SGD(nf.parameters(), lr=1e-3, momentum=0.9), nf,
                       clipping=0.01, example_input=x[:2])

    def fwd_bwd() -> None:
        nf.zero_grad(set_to_none=True)
        F.cross_entropy(nf(x), y).backward()

    def with_sgd() -> None:
        fwd_bwd()
        sgd.step()

    def with_agc() -> None:
        fwd_bwd()
        agc.step()

    clip_times = []

    def clip_only() -> None:
        t0 = clock()
        agc.clip_gradients()
        clip_times.append(clock() - t0)

    t = interleaved({"sgd": with_sgd, "agc": with_agc}, args.repeats)
    fwd_bwd()
    for _ in range(2 * args.repeats):
        clip_only()
    step = statistics.median(t["sgd"])
    print(f"[3] AGC         step {step:.3f}s  with AGC {statistics.median(t['agc']):.3f}s  "
          f"ratio {ratio(t, 'agc', 'sgd'):.3f}; clip_gradients alone "
          f"{statistics.median(clip_times) * 1e3:.1f} ms = "
          f"{100 * statistics.median(clip_times) / step:.2f}% of the step (target <= 5%)")


if __name__ == "__main__":
    main()
