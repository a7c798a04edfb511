"""Cost of the per-example gradient Gram relative to one plain forward + backward.

For each model, on the same batch (B = 128 by default), times interleaved (medians of the
per-repeat ratios, so drift hits every method alike) and peak working memory (torch
profiler allocation timeline, as in bench_spp.py):

* plain   : loss.backward() of the mean loss (parameter gradients, nothing per example);
* ours    : signalprop.gradient_gram (factorized or materialized per layer);
* func    : torch.func vmap(grad) per-example gradients, then sum_p G_p G_p^T;
* opacus  : Opacus GradSampleModule per-example gradients, then the same products (only
            if opacus is installed: ``pip install --no-deps opacus``).

Models: a small CNN (ResNetV2, CIFAR stem, width 0.25, norm "none", 32x32 inputs) and an
MLP 3072-512-512-10. Every method's Gram is checked against ours.

    python benchmarks/bench_gradients.py
    python benchmarks/bench_gradients.py --repeats 5 --batch 128 --models mlp
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn
from bench_spp import peak_bytes  # same folder: the profiler-based peak-memory helper

import signalprop as sp
from signalprop.measure.gradients._gram.engine import gram_run

LOSS = nn.CrossEntropyLoss()


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "cnn":
        return sp.models.resnetv2([1, 1, 1], norm="none", stem="cifar", width=0.25,
                                  num_classes=10)
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 512),
                         nn.ReLU(), nn.Linear(512, 10))


def methods(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Callable]:
    params = {k: v.detach() for k, v in model.named_parameters()}

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        LOSS(model(x), y).backward()

    def ours() -> torch.Tensor:
        return sp.gradient_gram(model, x, y, loss_fn=LOSS).matrix

    def one_loss(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(model, p, (xi.unsqueeze(0),))
        return LOSS(out, yi.unsqueeze(0))

    per_ex = torch.func.vmap(torch.func.grad(one_loss), in_dims=(None, 0, 0))

    def func() -> torch.Tensor:
        grads = per_ex(params, x, y)
        return sum((g.flatten(1) @ g.flatten(1).T).double() for g in grads.values())

    out = {"plain": plain, "ours": ours, "func": func}
    try:
        from opacus import GradSampleModule
    except ImportError:
        return out
    gsm = GradSampleModule(copy.deepcopy(model), loss_reduction="sum")
    sum_loss = nn.CrossEntropyLoss(reduction="sum")

    def opacus() -> torch.Tensor:
        gsm.zero_grad(set_to_none=True)
        sum_loss(gsm(x), y).backward()
        gram = sum((p.grad_sample.flatten(1) @ p.grad_sample.flatten(1).T).double()
                   for p in gsm.parameters() if p.requires_grad)
        for p in gsm.parameters():
            p.grad_sample = None
        return gram

    out["opacus"] = opacus
    return out


def bench(name: str, batch: int, repeats: int) -> None:
    model = build(name)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    fns = methods(model, x, y)
    ref = fns["ours"]()
    for key in ("func", "opacus"):
        if key in fns:
            err = float((fns[key]() - ref).abs().max() / ref.abs().max())
            print(f"  {name}: max |Gram_{key} - Gram_ours| / max |Gram| = {err:.2e}")
    strategies = gram_run(model, LOSS, x, y, batch, "auto").strategies
    kinds = sorted(set(strategies.values()))
    print(f"  {name}: per-layer strategies: " + ", ".join(
        f"{k} x{list(strategies.values()).count(k)}" for k in kinds))
    fns["plain"]()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    mem = {k: peak_bytes(fn) for k, fn in fns.items()}
    base_t, base_m = times["plain"], mem["plain"]
    for key in fns:
        ratio = statistics.median(t / b for t, b in zip(times[key], base_t))
        print(f"{name:<6}{key:<8}{statistics.median(times[key]):>10.3f}{ratio:>12.2f}"
              f"{mem[key] / 2**20:>12.1f}{mem[key] / base_m:>11.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="cnn,mlp")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}")
    print(f"{'model':<6}{'method':<8}{'median s':>10}{'time ratio':>12}{'peak MiB':>12}"
          f"{'mem ratio':>11}   (ratios vs plain forward+backward, same run)")
    for name in args.models.split(","):
        bench(name, args.batch, args.repeats)


if __name__ == "__main__":
    main()
