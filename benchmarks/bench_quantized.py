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
   (CIFAR stem, 32x32, binary stage convolutions, SGD with momentum): QuantizedTraining.step
   against the same SGD's step on the same network (so both update the same tensors), for
   "bc", "sr" and "r"                                                     target <= 10%
   With SGD on the CPU, SR and R update and round each quantized weight in one pass
   (signalprop.optim._fused_step); for reference, the general path every other optimizer
   takes (the optimizer's step, then a rounding pass; SR drawing from torch's generator),
   and its floors: drawing one uniform number per quantized weight from torch's CPU
   generator and one in-place pass over the quantized weights, each / SGD's step; and the
   overhead as a fraction of the whole training step (forward + backward + step).

Runs are interleaved (a, b, a, b, ...) and timed in process CPU time, so a busy machine
hits both sides alike; ratios are medians of per-pair ratios, with their quartiles.

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
from bench_toolkit import interleaved  # the same side-by-side timing

from signalprop.models import quant_resnetv2
from signalprop.nn import QuantLinear, quantized_layers
from signalprop.optim import QuantizedTraining, _fused_step


def spread(times: dict[str, list[float]], a: str, b: str) -> str:
    """Median of the per-pair ratios a / b, and their quartiles."""
    r = sorted(x / y for x, y in zip(times[a], times[b]))
    q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
    return f"{statistics.median(r):6.3f}  [{q[0]:.3f}, {q[2]:.3f}]"


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
    print(f"1. forward + backward, batch {batch}, {width} -> {width} (ms per call, CPU time, "
          f"{repeats} interleaved repeats of {inner} calls)")
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
    print(f"   {'ratio':42s} median  [quartiles]")
    for text, a, b, target in rows:
        print(f"   {text:42s} {spread(times, a, b)}   {target}")


def repeat(fn: Callable[[], object], inner: int) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            for _ in range(inner):
                fn()

    return run


def general_path(step: Callable[[], None]) -> Callable[[], None]:
    """``step`` with the one-pass SGD kernel switched off (what other optimizers get)."""
    def run() -> None:
        saved, _fused_step._kernel_matches = _fused_step._kernel_matches, False
        try:
            step()
        finally:
            _fused_step._kernel_matches = saved

    return run


def floors(net: nn.Module, inner: int) -> dict[str, Callable[[], None]]:
    """What SR / R cannot avoid: the draws (per layer, as SR draws them) and one pass."""
    weights = [m.weight for _, m in quantized_layers(net)]
    gen = torch.Generator().manual_seed(0)
    buf = torch.empty(max(w.numel() for w in weights))

    def draws() -> None:
        for w in weights:
            buf[:w.numel()].uniform_(-1.0, 1.0, generator=gen)

    def one_pass() -> None:
        for w in weights:
            w.mul_(1.0)

    return {"floor: draws": repeat(draws, inner), "floor: one pass": repeat(one_pass, inner)}


def training_costs(depths: object, width: float, batch: int, repeats: int, inner: int,
                   whole_repeats: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    steps: dict[str, Callable[[], None]] = {}
    whole: dict[str, Callable[[], None]] = {}
    for mode in ("bc", "sr", "r"):
        torch.manual_seed(0)
        net = quant_resnetv2(depths, norm="bn", stem="cifar", width=width, num_classes=10)
        sgd = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        qt = QuantizedTraining(sgd, net, mode, snap=True)
        F.cross_entropy(net(x), y).backward()  # gradients (and momentum buffers) exist
        steps[f"sgd {mode}"], steps[f"qt {mode}"] = repeat(sgd.step, inner), repeat(qt.step,
                                                                                     inner)
        if mode != "bc":
            steps[f"qt {mode} general"] = repeat(general_path(qt.step), inner)
        if mode == "sr":
            steps.update(floors(net, inner))
        for name, opt in (("sgd", sgd), ("qt", qt)):
            def train(net=net, opt=opt) -> None:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                opt.step()

            whole[f"{name} {mode}"] = train
    times = interleaved(steps, repeats)
    wtimes = interleaved(whole, whole_repeats)
    n = sum(m.weight.numel() for _, m in quantized_layers(net))
    print(f"2. QuantizedTraining on ResNetV2 {depths} width {width}, 32x32, batch {batch}, "
          f"{n / 1e6:.1f}M quantized weights (CPU time; {repeats} interleaved repeats of "
          f"{inner} steps, {whole_repeats} of the whole training step)")
    print(f"   SGD step {statistics.median(times['sgd sr']) / inner * 1e3:.1f} ms; "
          "ratios QuantizedTraining.step / SGD.step (overhead = ratio - 1), median  "
          "[quartiles]")
    for mode in ("bc", "sr", "r"):
        step_ms = statistics.median(times[f"qt {mode}"]) / inner * 1e3
        print(f"   {mode:2s}: step {step_ms:7.1f} ms   step / SGD step "
              f"{spread(times, f'qt {mode}', f'sgd {mode}')}   whole training step "
              f"{spread(wtimes, f'qt {mode}', f'sgd {mode}')}   (target: step <= 1.10)")
    for mode in ("sr", "r"):
        print(f"   {mode:2s} through the general path (other optimizers): step / SGD step "
              f"{spread(times, f'qt {mode} general', f'sgd {mode}')}")
    for name in ("floor: draws", "floor: one pass"):
        print(f"   {name:16s} / SGD step {spread(times, name, 'sgd sr')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-layer", action="store_true", help="only the training schemes")
    ap.add_argument("--skip-training", action="store_true", help="only the layer")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if args.small:
        layer_costs(32, 64, 3, 2)
        training_costs([1, 1], 0.25, 4, 3, 2, 2)
        return
    if not args.skip_layer:
        layer_costs(256, 512, args.repeats, 20)
    if not args.skip_training:
        training_costs("resnetv2_50", 1.0, 32, args.repeats, 3, max(3, args.repeats // 2))


if __name__ == "__main__":
    main()
