"""``signalprop confusion``: gradient confusion of presets or your own model."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from signalprop.cli._common import (
    CLIError,
    add_input_arguments,
    add_model_arguments,
    add_progress_argument,
    build_model,
    gaussian_input,
    model_variants,
    parse_list,
    prepare_out,
    write_results,
)

EXAMPLES = """\
examples:
  # per-example gradient confusion of an unnormalized and a normalizer-free ResNetV2
  signalprop confusion resnetv2_50 --norm none,nf --model-arg width=0.25 \\
      --model-arg stem=cifar --batch-size 64 --out out/confusion

  # BatchNorm networks: per-example gradients need the running statistics
  signalprop confusion resnetv2_50 --norm bn --batchnorm eval --batch-size 32

  # your own model, regression loss
  signalprop confusion mypkg.models:mlp --model-arg depth=20 --input-shape 784 \\
      --loss mse --batch-size 128

Inputs are Gaussian, labels uniform over the model's outputs (cross-entropy) or Gaussian
(mse). Prints eta = max(0, -min_{i!=j} <g_i, g_j>) and the pairwise cosine statistics;
writes OUT/confusion.png (density of cosines), OUT/confusion.csv and OUT/confusion.json,
saved after each model so an interrupted run keeps what it finished.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "confusion",
        help="gradient confusion (pairwise per-example gradient cosines)",
        description="Per-example gradient Gram matrix of one batch at about the cost of a "
        "backward pass; confusion statistics of Sankararaman et al. (ICML 2020).",
        epilog=EXAMPLES,
    )
    add_model_arguments(p, norms=True)
    add_input_arguments(p, batch_size=64, min_batch=2)
    p.add_argument("--loss", choices=("ce", "mse"), default="ce",
                   help="cross-entropy on random labels, or mean squared error on Gaussian "
                   "targets")
    p.add_argument("--batchnorm", choices=("auto", "eval", "error"), default="auto",
                   help="BatchNorm in train mode: auto and error refuse it (its batch "
                   "statistics couple the examples), eval uses the running statistics")
    p.add_argument("--quantiles", type=parse_list, default=["0.01", "0.05", "0.5", "0.95"],
                   help="cosine quantiles to print")
    p.add_argument("--out", type=Path, default=Path("out/confusion"), help="output directory")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                   help="figure format")
    add_progress_argument(p)
    p.set_defaults(func=run)
    return p


def summarize(r: Any) -> str:
    qs = "  ".join(f"q{q:g} {v:+.3f}" for q, v in r.quantiles.items())
    zero = f", {r.zero_gradient_examples} zero gradients" if r.zero_gradient_examples else ""
    return (f"{r.label}: B={r.batch_size}, eta {r.eta:.4g}, cosine min {r.min_cosine:+.3f} "
            f"mean {r.mean_cosine:+.3f} std {r.std_cosine:.3f}{zero}\n  {qs}")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from signalprop import plot

    if args.batch_size < 2:
        raise CLIError(f"--batch-size must be >= 2 (confusion compares pairs), got "
                       f"{args.batch_size}")
    try:
        quantiles = [float(q) for q in args.quantiles]
    except ValueError:
        raise CLIError(f"--quantiles expects numbers in [0, 1], got {args.quantiles}") from None
    variants = model_variants(args)
    prepare_out(args.out)
    results: list[Any] = []
    bar = tqdm(variants, desc="models", unit="model",
               disable=not args.progress or len(variants) < 2)
    for norm, label, kwargs in bar:
        t0 = time.perf_counter()
        model = build_model(args.model, kwargs, args.seed)
        model.train(args.mode == "train")
        x = gaussian_input(model, args.model, args.input_shape, args.batch_size, args.seed)
        res = _measure(model, x, args, quantiles, label)
        res.meta.update(model=args.model, norm=norm, seed=args.seed, loss=args.loss,
                        input_shape=list(x.shape[1:]),
                        seconds=round(time.perf_counter() - t0, 3))
        results.append(res)
        print(summarize(res), flush=True)
        write_results(results, args.out, "confusion")
    fig = plot.confusion(results, args.out / f"confusion.{args.format}",
                         title=f"Gradient confusion at initialization, batch {args.batch_size}")
    print(f"wrote {fig}, {args.out / 'confusion.csv'}, {args.out / 'confusion.json'}")
    return 0


def _measure(model: Any, x: Any, args: argparse.Namespace, quantiles: list[float],
             label: str) -> Any:
    """gradient_confusion of one model on random targets; errors in the CLI's words."""
    import torch

    from signalprop.measure import ForwardError, gradient_confusion

    gen = torch.Generator().manual_seed(args.seed + 1)  # targets: a stream apart from x's
    try:
        y, loss_fn = _targets(model, x, args.loss, gen)
        return gradient_confusion(model, x, y, loss_fn=loss_fn, quantiles=quantiles,
                                  batchnorm=args.batchnorm, label=label)
    except (ValueError, ForwardError) as e:
        msg = str(e).replace("batchnorm='eval'", "--batchnorm eval")
        raise CLIError(msg.replace("call model.eval()", "use --mode eval")) from None


def _targets(model: Any, x: Any, loss: str, gen: Any) -> tuple[Any, Any]:
    """Random targets shaped by one forward of the model, and the matching loss."""
    import torch
    import torch.nn as nn

    from signalprop._forward import buffers_restored, first_tensor, locate_failure

    try:
        with torch.no_grad(), buffers_restored(model):
            out = first_tensor(model(x[:2]))
    except Exception as e:  # noqa: BLE001 -- reported as the module that failed
        raise locate_failure(model, x[:2], e) from e
    if out is None:
        raise ValueError("the model output holds no floating-point tensor")
    if loss == "mse":
        return torch.randn((x.shape[0], *out.shape[1:]), generator=gen), nn.MSELoss()
    if out.dim() != 2:
        raise ValueError(f"--loss ce needs (B, classes) outputs, got shape {tuple(out.shape)}; "
                         "use --loss mse")
    return torch.randint(0, out.shape[1], (x.shape[0],), generator=gen), nn.CrossEntropyLoss()
