"""``signalprop confusion``: gradient confusion of presets or your own model."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from signalprop.cli._common import CLIError, HelpFormatter, parse_list, parse_shape

EXAMPLES = """\
examples:
  # per-example gradient confusion of an unnormalized and a normalizer-free ResNetV2
  signalprop confusion --model resnetv2_50 --norm none,nf --model-arg width=0.25 \\
      --model-arg stem=cifar --batch-size 64 --out out/confusion

  # BatchNorm networks: per-example gradients need the running statistics
  signalprop confusion --model resnetv2_50 --norm bn --batchnorm eval --batch-size 32

  # your own model, regression loss
  signalprop confusion --model mypkg.models:mlp --model-arg depth=20 --input-shape 784 \\
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
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", required=True,
                   help="a preset such as resnetv2_50 ('signalprop models' lists them) "
                   "or package.module:factory")
    p.add_argument("--norm", type=parse_list, default=None,
                   help="comma-separated norms to compare (presets: bn, none, nf)")
    p.add_argument("--activation", default=None, help="activation for presets, e.g. relu")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra keyword for the model factory (repeatable; VALUE is a "
                   "Python literal)")
    p.add_argument("--input-shape", type=parse_shape, default=None,
                   help="one example's shape without the batch axis (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=64, help="examples (>= 2)")
    p.add_argument("--loss", choices=("ce", "mse"), default="ce",
                   help="cross-entropy on random labels, or mean squared error on Gaussian "
                   "targets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("train", "eval"), default="train", help="module mode")
    p.add_argument("--batchnorm", choices=("auto", "eval", "error"), default="auto",
                   help="train-mode BatchNorm: refuse, or use running statistics")
    p.add_argument("--quantiles", type=parse_list, default=["0.01", "0.05", "0.5", "0.95"],
                   help="cosine quantiles to print")
    p.add_argument("--out", type=Path, default=Path("out/confusion"), help="output directory")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def summarize(r: Any) -> str:
    qs = "  ".join(f"q{q:g} {v:+.3f}" for q, v in r.quantiles.items())
    zero = f", {r.zero_gradient_examples} zero gradients" if r.zero_gradient_examples else ""
    return (f"{r.label}: B={r.batch_size}, eta {r.eta:.4g}, cosine min {r.min_cosine:+.3f} "
            f"mean {r.mean_cosine:+.3f} std {r.std_cosine:.3f}{zero}\n  {qs}")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from signalprop import models, plot
    from signalprop.cli._spp import _model_kwargs
    from signalprop.measure import ForwardError, gradient_confusion
    from signalprop.results import write_csv

    if args.batch_size < 2:
        raise CLIError(f"--batch-size must be >= 2 (confusion compares pairs), got "
                       f"{args.batch_size}")
    try:
        quantiles = [float(q) for q in args.quantiles]
    except ValueError:
        raise CLIError(f"--quantiles expects numbers in [0, 1], got {args.quantiles}") from None
    base = _model_kwargs(args.model_arg)
    if args.activation:
        base["activation"] = args.activation
    norms: list[str | None] = list(args.norm) if args.norm else [None]
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[Any] = []
    bar = tqdm(norms, desc="models", unit="model", disable=args.no_progress or len(norms) < 2)
    for norm in bar:
        label = args.model if norm is None else f"{args.model} {norm}"
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        try:
            model = models.load_model(args.model, **dict(base, **({"norm": norm} if norm else {})))
        except ValueError as e:
            raise CLIError(str(e)) from None
        model.train(args.mode == "train")
        shape = args.input_shape or getattr(model, "default_input_shape", None)
        if shape is None:
            raise CLIError(f"--input-shape is required for {args.model!r} "
                           "(one example's shape without the batch axis, e.g. 3,32,32)")
        gen = torch.Generator().manual_seed(args.seed)
        x = torch.randn((args.batch_size, *shape), generator=gen)
        try:
            y, loss_fn = _targets(model, x, args.loss, gen)
            res = gradient_confusion(model, x, y, loss_fn=loss_fn, quantiles=quantiles,
                                     batchnorm=args.batchnorm, label=label)
        except (ValueError, ForwardError) as e:
            msg = str(e).replace("batchnorm='eval'", "--batchnorm eval")
            raise CLIError(msg.replace("call model.eval()", "use --mode eval")) from None
        res.meta.update(model=args.model, norm=norm, seed=args.seed, loss=args.loss,
                        input_shape=list(shape), seconds=round(time.perf_counter() - t0, 3))
        results.append(res)
        print(summarize(res), flush=True)
        write_csv(results, args.out / "confusion.csv")
        (args.out / "confusion.json").write_text(
            json.dumps([r.to_dict() for r in results], indent=1, allow_nan=False))
    fig = plot.confusion(results, args.out / f"confusion.{args.format}",
                         title=f"Gradient confusion at initialization, batch {args.batch_size}")
    print(f"wrote {fig}, {args.out / 'confusion.csv'}, {args.out / 'confusion.json'}")
    return 0


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
