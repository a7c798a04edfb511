"""``signalprop spp``: Signal Propagation Plots for presets or your own model."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from signalprop.cli import _backward
from signalprop.cli._common import (
    CLIError,
    add_input_arguments,
    add_model_arguments,
    add_progress_argument,
    build_model,
    describe_input,
    model_input,
    model_variants,
    parse_list,
    prepare_out,
    write_results,
)

EXAMPLES = """\
examples:
  # the paper's comparison: ResNetV2-600 with BatchNorm, without, and normalizer-free,
  # with the theory's predictions dashed
  signalprop spp resnetv2_600 --norm bn,none,nf --input-shape 3,224,224 --predict

  # your own model: any importable factory returning an nn.Module
  signalprop spp mypkg.models:build_net --model-arg depth=50 --input-shape 3,32,32

  # a transformer-style model whose channels are last
  signalprop spp mypkg.models:encoder --input-shape 128,256 --channel-dim -1

  # a language model on token ids (vocabulary 50257, 64 tokens), with an attention mask
  signalprop spp mypkg.models:gpt2_small --tokens 50257,64 --attention-mask ones --mode eval

  # also the gradient panels (writes OUT/grad_spp.png, .csv, .json)
  signalprop spp resnetv2_50 --norm bn,nf --input-shape 3,32,32 --backward

  # also check that no example changes another's output (train and eval mode)
  signalprop spp resnetv2_50 --norm bn,nf --check-independence

writes OUT/spp.png (three panels), OUT/spp.csv and OUT/spp.json; results are saved after
each model, so an interrupted run keeps what it finished.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "spp",
        help="Signal Propagation Plots at initialization",
        description="Measure per-block signal statistics (Brock, De & Smith 2021) on "
        "Gaussian input and plot them.",
        epilog=EXAMPLES,
    )
    add_model_arguments(p, norms=True)
    add_input_arguments(p, tokens=True)
    p.add_argument("--blocks", type=parse_list, default=None,
                   help="comma-separated module names to measure (default: discovered)")
    p.add_argument("--predict", action="store_true",
                   help="overlay the theory's predicted schedule (dashed) where the model has "
                   "one (signalprop ResNetV2 presets)")
    p.add_argument("--out", type=Path, default=Path("out/spp"), help="output directory")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                   help="figure format")
    p.add_argument("--check-independence", action="store_true",
                   help="also perturb one example and report how much the others' outputs "
                   "move, in train and eval mode (BatchNorm leaks in train mode)")
    _backward.add_arguments(p)
    add_progress_argument(p)
    p.set_defaults(func=run)
    return p


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def summarize(res: Any) -> str:
    """A few lines per model: first/last block, maxima, first non-finite block."""
    recs = res.records
    first, last = recs[0], recs[-1]
    lines = [f"{res.label}: {len(recs)} blocks ({res.discovery})"]
    for tag, r in (("first", first), ("last", last)):
        lines.append(f"  {tag:<6} {r.name:<16} sq_mean {_fmt(r.avg_sq_mean):>10}  "
                     f"var {_fmt(r.avg_var):>10}  res_var {_fmt(r.res_var):>8}")
    finite = [r for r in recs if not r.nonfinite]
    if finite:
        m = max(finite, key=lambda r: r.avg_sq_mean)
        v = max(finite, key=lambda r: r.avg_var)
        lines.append(f"  max    sq_mean {_fmt(m.avg_sq_mean)} at {m.name}; "
                     f"var {_fmt(v.avg_var)} at {v.name}")
    bad = res.first_nonfinite
    lines.append("  non-finite values: none" if bad is None else
                 f"  non-finite values: first at {bad.name} (block {bad.index}, "
                 f"{bad.nonfinite} values)")
    return "\n".join(lines)


def _prediction(model: Any, res: Any, x: Any) -> Any:
    """The theory's SPP where the model has one (printing a note either way)."""
    from signalprop.report import predicted_spp

    pred, note = predicted_spp(model, res, x)
    print(f"  {note}")
    return pred


def run(args: argparse.Namespace) -> int:
    from signalprop import plot

    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}")
    variants = model_variants(args)
    prepare_out(args.out)
    results: list[Any] = []
    predictions: list[Any] = []
    grads: list[Any] = []
    grad_preds: list[Any] = []
    x = None
    for norm, label, kwargs in variants:
        print(f"building {label} ...", flush=True)
        t0 = time.perf_counter()
        model = build_model(args.model, kwargs, args.seed)
        model.train(args.mode == "train")
        if x is None:
            x = model_input(model, args)
            args.channel_dim = _channel_dim(model, x, args.channel_dim)
        res = _measure(model, x, args, label)
        res.meta.update(model=args.model, norm=norm, seed=args.seed,
                        seconds=round(time.perf_counter() - t0, 3))
        predictions.append(_prediction(model, res, x) if args.predict else None)
        if args.backward:
            grads.append(_backward.measure(model, x, args, label))
            grad_preds.append(_backward.predict(model, grads[-1], x) if args.predict else None)
            print(_backward.summarize(grads[-1]), flush=True)
            _backward.write(grads, args, "", grad_preds)
        del model
        results.append(res)
        # Save after every model: an interrupted comparison keeps what it finished.
        write_results(results + [p for p in predictions if p is not None], args.out, "spp")
    fig = plot.spp(results, args.out / f"spp.{args.format}", predicted=predictions,
                   title=f"Signal propagation at initialization, input {describe_input(x)}"
                   + (" (dashed: theory)" if any(p is not None for p in predictions) else ""))
    print(f"wrote {fig}, {args.out / 'spp.csv'}, {args.out / 'spp.json'}")
    if grads:
        print("wrote " + _backward.write(
            grads, args, f"Gradient propagation at initialization, input {describe_input(x)}",
            grad_preds))
    return 0


def _channel_dim(model: Any, x: Any, given: int | None) -> int:
    """``--channel-dim``, or the axis inferred from the model's blocks (printed)."""
    from signalprop.measure import ForwardError
    from signalprop.report._probe import channel_axis

    if given is not None:
        return given
    try:
        axis, why = channel_axis(model, x, None)
    except (ValueError, ForwardError) as e:
        raise CLIError(str(e)) from None
    print(f"channel axis {axis} ({why})", flush=True)
    return axis


def _measure(model: Any, x: Any, args: argparse.Namespace, label: str) -> Any:
    """The SPP of one model (with the batch-independence check when asked), printed."""
    from signalprop.measure import ForwardError, batch_independence, spp

    try:
        res = spp(model, x, blocks=args.blocks, channel_dim=args.channel_dim, label=label,
                  progress=args.progress)
    except (ValueError, ForwardError) as e:
        raise CLIError(str(e)) from None
    print(summarize(res), flush=True)
    if args.check_independence:
        try:
            ind = batch_independence(model, x, seed=args.seed, label=label)
        except (ValueError, ForwardError) as e:
            raise CLIError(f"--check-independence: {e}") from None
        res.meta["batch_independence"] = ind.to_dict()
        print(f"  {ind.summary()}", flush=True)
    return res
