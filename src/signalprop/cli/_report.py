"""``signalprop report``: a one-page diagnosis of a model, with the fix."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from signalprop.cli._common import (
    CLIError,
    add_input_arguments,
    add_model_arguments,
    add_progress_argument,
    build_model,
    model_input,
    parse_key_values,
    prepare_out,
)

EXAMPLES = """\
examples:
  # diagnose a BatchNorm ResNet on CIFAR-sized input
  signalprop report resnetv2_50 --model-arg stem=cifar --input-shape 3,32,32

  # an unnormalized ResNet, converted to normalizer-free, with before/after plots
  signalprop report resnetv2_50 --model-arg norm=none --model-arg stem=cifar \\
      --input-shape 3,32,32 --fix --out out/report-none

  # your own model: any importable factory returning an nn.Module
  signalprop report mypkg.models:build_net --input-shape 3,64,64

  # a HuggingFace language model built by your factory, on token ids with a padding mask
  signalprop report mypkg.models:bert_tiny --tokens 30522,32 --attention-mask padded \
      --mode eval

writes OUT/report.html (self-contained: open it in any browser, offline), the PNGs it
shows and OUT/report.json (the diagnoses); prints the diagnoses.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="one-page HTML diagnosis of a model, with the fix",
        description="Measure forward and gradient signal propagation, gradient confusion, "
        "the Jacobian spectrum and batch independence at initialization; diagnose the "
        "model in plain words and show the line of signalprop code that fixes each problem.",
        epilog=EXAMPLES,
    )
    add_model_arguments(p)
    add_input_arguments(p, min_batch=2, tokens=True)
    p.add_argument("--fix", action="store_true",
                   help="apply the fix (to_normfree, or the critical init for plain "
                   "networks), measure again and add before/after plots")
    p.add_argument("--out", type=Path, default=Path("out/report"), help="output directory")
    add_progress_argument(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from signalprop.measure import ForwardError
    from signalprop.report import build_report

    if args.batch_size < 2:
        raise CLIError(f"--batch-size must be >= 2 (batch independence and gradient "
                       f"confusion compare examples), got {args.batch_size}")
    prepare_out(args.out)
    model = build_model(args.model, parse_key_values(args.model_arg, "--model-arg"), args.seed)
    model.train(args.mode == "train")
    x = model_input(model, args)
    try:
        result = build_report(model, x, args.out, fix=args.fix, label=args.model,
                              channel_dim=args.channel_dim, seed=args.seed,
                              progress=args.progress)
    except (ValueError, ForwardError) as e:
        raise CLIError(str(e)) from None
    diags = result.diagnoses
    print(f"{args.model}: {len(diags)} problem(s) at initialization"
          + (":" if diags else " (none of the thresholds crossed)"))
    for d in diags:
        print(f"  {d}")
    if result.after is not None:
        kinds = ", ".join(d.title for d in result.after.diagnoses) or "none"
        print(f"after the fix ({result.fix_summary.splitlines()[0]}): {kinds}")
    elif args.fix:
        print(f"no fix applied: {result.fix_summary}")
    print(f"wrote {result.path} ({result.seconds:.1f} s)")
    return 0
