"""Helpers shared by CLI subcommands: argument parsers for shapes and lists, errors."""

from __future__ import annotations

import argparse
from typing import Any


class CLIError(Exception):
    """A user-fixable error: printed as one line, exit status 2."""


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,64,64"`` -> ``(3, 64, 64)``; used as an argparse ``type``."""
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 3,64,64, got {text!r}"
        ) from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 3,64,64, got {text!r}"
        )
    return shape


def parse_list(text: str) -> list[str]:
    """``"bn,none,nf"`` -> ``["bn", "none", "nf"]``."""
    return [s.strip() for s in text.split(",") if s.strip()]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks; appends a default where one is set and not yet said."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default not in (None, False, [], argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def parse_key_values(items: list[str], option: str) -> dict[str, object]:
    """``["depth=50", "norm=nf"]`` -> ``{"depth": 50, "norm": "nf"}`` (values are Python
    literals where they parse as one, else strings)."""
    import ast

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def add_model_input_arguments(p: argparse.ArgumentParser) -> None:
    """The options that build a model and its Gaussian input batch (with ``build_model``
    and ``gaussian_input``): --model-arg, --input-shape, --batch-size, --seed, --mode."""
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra keyword for the model factory (repeatable; VALUE is a "
                   "Python literal), e.g. norm=none")
    p.add_argument("--input-shape", type=parse_shape, default=None,
                   help="one example's shape without the batch axis, e.g. 3,64,64 "
                   "(default: the preset's own)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=("train", "eval"), default="train",
                   help="module mode: train uses batch statistics in BatchNorm, as in the paper")


def build_model(spec: str, kwargs: dict[str, object], seed: int) -> Any:
    """The model a ``--model`` argument names (a preset such as ``resnetv2_50`` or
    ``package.module:factory``), built with ``kwargs`` after seeding torch with ``seed``."""
    import torch

    from signalprop import models

    torch.manual_seed(seed)
    try:
        return models.load_model(spec, **kwargs)
    except (ValueError, TypeError) as e:  # TypeError: a keyword the factory does not take
        raise CLIError(f"--model {spec}: {e}") from None


def gaussian_input(model: Any, spec: str, shape: tuple[int, ...] | None, batch_size: int,
                   seed: int) -> Any:
    """A seeded N(0, 1) batch of ``shape`` (default: the model's ``default_input_shape``)."""
    import torch

    if batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {batch_size}")
    shape = shape or getattr(model, "default_input_shape", None)
    if shape is None:
        raise CLIError(f"--input-shape is required for {spec!r} "
                       "(one example's shape without the batch axis, e.g. 3,64,64)")
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *shape), generator=gen)
