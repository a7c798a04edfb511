"""Cost of reading a model's structure from a forward instead of a torch.fx graph.

to_normfree / bn_to_gn_ws find residual branches either by tracing (torch.fx) or, with
``example_input``, from one eval-mode forward watched by module hooks and a torch-function
mode. Printed side by side, as ratios of one plain eval forward on the same batch:

1. the forward analysis alone (convert._runtime.runtime_analysis)       target <= 20x
2. the graph analysis alone (convert._graph.graph_analysis)            (for comparison)
3. to_normfree(model, example_input=x) end to end (copy, analysis, surgery, calibration)

on ResNetV2-50 as a torch.fx-traceable model (1 and 2; batch 8, 64x64) and, when
transformers is installed, on HuggingFace's ResNet-50 (untraceable: 1 and 3). Timed
interleaved with CPU time, as bench_toolkit.py; medians of per-pair ratios.

    python benchmarks/bench_convert.py
    python benchmarks/bench_convert.py --repeats 7 --size 96
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
from bench_toolkit import interleaved  # CPU times, run in turn after a warm-up

import signalprop as sp
from signalprop.convert._graph import graph_analysis
from signalprop.convert._runtime import runtime_analysis


def ratios(name: str, model: torch.nn.Module, x: torch.Tensor, repeats: int,
           graph: bool) -> None:
    model.eval()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    fns: dict[str, Callable[[], object]] = {
        "forward": forward,
        "forward analysis": lambda: runtime_analysis(model, x, "bench"),
    }
    if graph:
        fns["graph analysis"] = lambda: graph_analysis(model, "bench")
    else:  # (ResNetV2 itself is rebuilt by to_normfree, not analysed)
        fns["to_normfree(example_input)"] = lambda: sp.convert.to_normfree(
            model, example_input=x)
    times = interleaved(fns, repeats)
    base = times["forward"]
    print(f"{name}: eval forward {statistics.median(base) * 1e3:.1f} ms CPU")
    for k in fns:
        if k != "forward":
            r = statistics.median(a / b for a, b in zip(times[k], base))
            print(f"  {k:28s} {r:7.2f} x forward")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    net = sp.models.resnetv2("resnetv2_50", norm="bn", width=args.width)
    ratios("ResNetV2-50 (bn)", net, x, args.repeats, graph=True)
    try:
        import transformers
    except ImportError:
        print("transformers not installed: HuggingFace ResNet-50 skipped")
        return
    transformers.logging.set_verbosity_error()
    hf = transformers.ResNetModel(transformers.ResNetConfig(depths=[3, 4, 6, 3]))
    ratios("HF ResNet-50", hf, x, args.repeats, graph=False)


if __name__ == "__main__":
    main()
