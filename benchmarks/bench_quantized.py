"""Costs of the low-precision layers and training schemes, as ratios measured side by side.

1. Forward + backward of one layer at batch 256, 512 -> 512 (CPU):
   QuantLinear (binary, mean-|w| scale, STE)           / nn.Linear        target <= 1.3
   QuantLinear (binary, mean-|w| scale, 1W/1A, ReSTE)  / nn.Linear        (reported)
   QuantLinear (binary, no scale) / Brevitas QuantLinear(SignedBinaryWeightPerTensorConst)
   QuantLinear (8 bits, no scale) / Brevitas QuantLinear(Int8WeightPerTensorFloat)
                                                                          target <= 1.0
   (Brevitas only when installed: pip install --no-deps brevitas dependencies==2.0.1
   unfoldNd; it never touches torch.)
2. QuantizedTraining step overhead over the wrapped optimizer's step, on ResNetV2-50
   (CIFAR stem, 32x32, binary stage convolutions, SGD with momentum): the step alone
   (QuantizedTraining.step vs optimizer.step) for "bc" and "sr", and as a fraction of the
   whole training step (forward + backward + step)                        target <= 10%

Runs are interleaved (a, b, a, b, ...) and timed in process CPU time, so a busy machine
hits both sides alike; ratios are medians of per-pair ratios.

    python benchmarks/bench_quantized.py                  # the full measurement
    python benchmarks/bench_quantized.py --small          # a seconds-long smoke run
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from bench_toolkit import interleaved, ratio  # the same side-by-side timing

from signalprop.models import quant_resnetv2
from signalprop.nn import QuantLinear
from signalprop.optim import QuantizedTraining


def fwd_bwd(layer: nn.Module, x: torch.Tensor, inner: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(inner):
            layer.zero_grad(set_to_none=True)
            layer(x).sum().backward()

    return run


def layer_costs(batch: int, width: int, repeats: int, inner: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(batch, width)
    layers: dict[str, nn.Module] = {
        "nn.Linear": nn.Linear(width, width),
        "QuantLinear binary mean_abs": QuantLinear(width, width),
        "QuantLinear 1W/1A reste": QuantLinear(width, width, act_levels="binary",
                                               estimator="reste"),
        "QuantLinear binary none": QuantLinear(width, width, scale=None),
        "QuantLinear int8 none": QuantLinear(width, width, weight_levels=8, scale=None),
    }
    try:
        import brevitas.nn as qnn
        from brevitas.quant import Int8WeightPerTensorFloat, SignedBinaryWeightPerTensorConst

        layers["brevitas binary const"] = qnn.QuantLinear(
            width, width, bias=True, weight_quant=SignedBinaryWeightPerTensorConst)
        layers["brevitas int8 float"] = qnn.QuantLinear(
            width, width, bias=True, weight_quant=Int8WeightPerTensorFloat)
    except ImportError:
        print("  (brevitas not installed: its comparisons are skipped)")
    times = interleaved({k: fwd_bwd(m, x, inner) for k, m in layers.items()}, repeats)
    per_call = {k: statistics.median(v) / inner * 1e3 for k, v in times.items()}
    print(f"1. forward + backward, batch {batch}, {width} -> {width} (ms per call, CPU time)")
    for k, ms in per_call.items():
        print(f"   {k:32s} {ms:8.3f} ms")
    rows = [("QuantLinear binary mean_abs / nn.Linear", "QuantLinear binary mean_abs",
             "nn.Linear", "(target <= 1.3)"),
            ("QuantLinear 1W/1A reste / nn.Linear", "QuantLinear 1W/1A reste", "nn.Linear", "")]
    if "brevitas binary const" in times:
        rows += [("ours / brevitas, binary (no scale)", "QuantLinear binary none",
                  "brevitas binary const", "(target <= 1.0)"),
                 ("ours / brevitas, int8", "QuantLinear int8 none", "brevitas int8 float",
                  "(target <= 1.0)")]
    for text, a, b, target in rows:
        print(f"   {text:42s} {ratio(times, a, b):6.3f}   {target}")


def training_costs(depths: object, width: float, batch: int, repeats: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    fns: dict[str, Callable[[], None]] = {}
    for mode in ("plain", "bc", "sr"):
        torch.manual_seed(0)
        net = quant_resnetv2(depths, norm="bn", stem="cifar", width=width, num_classes=10)
        sgd = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        opt = sgd if mode == "plain" else QuantizedTraining(sgd, net, mode, snap=True)
        F.cross_entropy(net(x), y).backward()  # gradients (and momentum buffers) exist

        def step(opt=opt) -> None:
            opt.step()

        def whole(net=net, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            opt.step()

        fns[f"step {mode}"], fns[f"train {mode}"] = step, whole
    times = interleaved(fns, repeats)
    print(f"2. QuantizedTraining on ResNetV2 {depths} width {width}, 32x32, batch {batch} "
          "(CPU time)")
    for mode in ("bc", "sr"):
        step_over = ratio(times, f"step {mode}", "step plain") - 1
        step_ms = statistics.median(times[f"step {mode}"]) * 1e3
        whole_over = ratio(times, f"train {mode}", "train plain") - 1
        print(f"   {mode}: step {step_ms:7.1f} ms, +{step_over:6.1%} over SGD's step; "
              f"whole training step +{whole_over:6.1%}   (target <= 10%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.small:
        layer_costs(32, 64, 3, 2)
        training_costs([1, 1], 0.25, 4, 2)
    else:
        layer_costs(256, 512, args.repeats, 20)
        training_costs("resnetv2_50", 1.0, 32, args.repeats)


if __name__ == "__main__":
    main()
