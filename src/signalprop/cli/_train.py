"""``signalprop train``: one training run from flags and/or a YAML config file."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from signalprop.cli._common import (
    CLIError,
    add_model_arguments,
    add_progress_argument,
    parse_key_values,
    prepare_out,
)

EXAMPLES = """\
examples:
  # a small normalizer-free ResNet on scikit-learn's digits as 1x8x8 images
  signalprop train resnetv2_50 --model-arg "name_or_depths=[1,1]" \\
      --model-arg stem=cifar --model-arg norm=nf --model-arg in_chans=1 \\
      --model-arg num_classes=10 --dataset digits --data-arg as_image=True \\
      --optimizer nesterov --lr 0.05 --schedule cosine --epochs 5 --out runs/digits

  # your own model on a table of 4 features and 3 classes
  signalprop train torch.nn:Linear --model-arg in_features=4 --model-arg out_features=3 \\
      --dataset iris --batch-size 16 --steps 100

  # the same from a file (any config key, the model too; flags and MODEL override it),
  # checkpoint every 50 steps
  signalprop train --config run.yaml --checkpoint-every 50 --out runs/a

  # continue an interrupted run: the final weights equal those of an uninterrupted run
  signalprop train --config run.yaml --out runs/a --resume

  # on a GPU where there is one (checkpoints resume on either device)
  signalprop train --config run.yaml --device auto --amp bfloat16 --out runs/gpu

  # data-parallel on 2 processes (gloo; nccl and one GPU each with --device cuda);
  # --batch-size is the global batch
  torchrun --standalone --nproc-per-node 2 -m signalprop train --ddp --config run.yaml

writes OUT/metrics.jsonl (JSON lines), OUT/checkpoint.pt and OUT/result.json; a run whose
loss becomes NaN/Inf ends with status "diverged" and the step, exit status 0.
"""

# config field -> (flag help, parser for a single flag value)
_HELP = {
    "dataset": "mnist1d, digits, iris, wine, breast_cancer, cifar10, gaussian",
    "optimizer": "sgd, nesterov, adam or nag",
    "schedule": "constant, step, cosine, warmup (linear warm-up then constant) or exp "
                "(Li & Arora's lr * alpha^(-2t-1), with --exp-weight-decay)",
    "exp_weight_decay": "exp schedule: the weight decay it stands in for",
    "objective": "supervised or byol (options as objective_args in --config)",
    "log_effective_lr": "1: log lr / ||w||^2 of the scale-invariant weights",
    "betas": "Adam's two betas, e.g. 0.9,0.999",
    "milestones": "step schedule: fractions of the run where lr *= gamma, e.g. 0.5,0.75",
    "epochs": "run length in epochs (or --steps)",
    "steps": "run length in steps (or --epochs)",
    "agc_clipping": "adaptive gradient clipping threshold (signalprop.optim.AGC)",
    "quantize": "train quantized layers by bc, sr or r (signalprop.optim.QuantizedTraining)",
    "log_every": "write a train metrics line every N steps",
    "eval_every": "evaluate on the test split every N steps (0: every epoch and at the end)",
    "checkpoint_every": "checkpoint every N steps (0: only at the end and on Ctrl-C)",
    "device": "cpu (default), cuda, cuda:N, or auto (cuda where there is a GPU, else cpu)",
    "amp": "mixed precision: bfloat16, or float16 with loss scaling (default: off)",
}


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}"
                                         ) from None


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 1/0 (true/false), got {text!r}")


def register(sub: Any) -> argparse.ArgumentParser:
    from signalprop.train.config import TrainConfig

    p = sub.add_parser(
        "train", help="train a model (resumable, metrics as JSON lines)",
        description="Train a preset or your own model on an offline dataset.",
        epilog=EXAMPLES)
    add_model_arguments(p, optional=True)
    p.add_argument("--config", type=Path, default=None,
                   help="YAML or JSON file of config keys (MODEL and flags override it)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("model", "model_args", "dataset_args", "objective_args"):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = {"betas": _floats, "milestones": _floats, "lr": float, "momentum": float,
                "eps": float, "weight_decay": float, "gamma": float, "min_lr": float,
                "agc_clipping": float, "exp_weight_decay": float,
                "log_effective_lr": _flag}.get(f.name, str if f.name in (
                    "dataset", "optimizer", "schedule", "quantize", "device", "amp",
                    "objective") else int)
        p.add_argument(flag, dest=f.name, type=kind, default=None,
                       help=_HELP.get(f.name, f.name.replace("_", " ")))
    p.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="option of the dataset loader, e.g. root=DIR, as_image=True")
    p.add_argument("--out", type=Path, default=Path("out/train"), help="run directory")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (starts afresh if there is none)")
    p.add_argument("--ddp", action="store_true", help="data-parallel training under torchrun")
    add_progress_argument(p)
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` that MODEL, the flags and the ``--config`` file describe (the
    command line wins); the model must come from one of them."""
    from signalprop.train.config import TrainConfig, field_names, read_mapping

    data: dict[str, Any] = {}
    if args.config is not None:
        try:
            data = read_mapping(args.config)
        except (OSError, ValueError, ImportError) as e:
            raise CLIError(str(e)) from None
    for name in field_names():
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    if "model" not in data:
        raise CLIError("no model to train: give MODEL (a preset such as resnetv2_50 or "
                       "module:function), or a --config file with a 'model' key")
    if "dataset" not in data:
        from signalprop.data import list_datasets

        raise CLIError(f"no dataset to train on: give --dataset ({', '.join(list_datasets())}), "
                       "or a --config file with a 'dataset' key")
    if args.steps is not None:  # a flag picks the run length even if the file set the other
        data.pop("epochs", None)
    if args.epochs is not None:
        data.pop("steps", None)
    if "epochs" not in data and "steps" not in data:
        data["epochs"] = 1
    for key, value in parse_key_values(args.model_arg, "--model-arg").items():
        data[f"model_args.{key}"] = value
    for key, value in parse_key_values(args.data_arg, "--data-arg").items():
        data[f"dataset_args.{key}"] = value
    try:
        return TrainConfig.from_dict(data)
    except (ValueError, TypeError) as e:
        raise CLIError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    from signalprop.data import DatasetNotFoundError
    from signalprop.train import CheckpointError, fit
    from signalprop.train.device import resolve_device
    from signalprop.train.distributed import local_rank

    cfg = config_from_args(args)
    try:  # a GPU this machine lacks is one line, before the run folder exists
        resolve_device(cfg.device, local_rank=local_rank() if args.ddp else None)
    except ValueError as e:
        raise CLIError(str(e)) from None
    prepare_out(args.out)
    try:  # fit checks the data, the model and any checkpoint before it trains
        result = fit(cfg, args.out, resume=args.resume, progress=args.progress, ddp=args.ddp)
    except (ValueError, DatasetNotFoundError, CheckpointError, ImportError) as e:
        raise CLIError(str(e)) from None
    if result.out is None or not args.ddp or _is_main():
        m = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
        if result.status == "diverged":
            print(f"diverged at step {result.step}/{result.total_steps}: {result.message}")
        else:
            print(f"completed {result.step} steps in {result.seconds:.1f} s: {m}")
        print(f"wrote {args.out / 'metrics.jsonl'}, {args.out / 'result.json'}")
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
