"""Helpers shared by CLI subcommands: the parser, shared options, model building, errors.

Every command that takes a model takes it as the positional ``MODEL`` (a preset name or
``module:function``) with ``--model-arg KEY=VALUE`` for the factory's keywords; the
options below are declared here once, so they read the same in every command.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
from pathlib import Path
from typing import Any, NoReturn

MODEL_HELP = ("a preset such as resnetv2_50 ('signalprop models' lists them) or "
              "module:function, an importable factory returning an nn.Module")


class CLIError(Exception):
    """A user-fixable error: printed as one line, exit status 2."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks; appends a default where one is set and not yet said."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default is not None and default is not False and default != []
            and default is not argparse.SUPPRESS
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (exit status 2, as argparse).

    Abbreviated options are off: ``--batch`` would otherwise mean ``--batch-size`` in one
    command and be ambiguous in the next, and a new option could change what an old
    command line means.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parse_shape(text: str) -> tuple[int, ...]:
    """One example's shape from ``"3,64,64"``; used as an argparse ``type``.

    Examples:
        >>> parse_shape("3,64,64")
        (3, 64, 64)
    """
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 3,64,64, got {text!r}"
        )
    return shape


def parse_tokens(text: str) -> tuple[int, int]:
    """``"VOCAB,SEQ_LEN"`` -> ``(vocab, seq_len)``; used as an argparse ``type``.

    Examples:
        >>> parse_tokens("50257,128")
        (50257, 128)
    """
    try:
        vocab, seq_len = (int(s) for s in text.split(","))
    except ValueError:
        vocab = seq_len = 0
    if vocab < 1 or seq_len < 1:
        raise argparse.ArgumentTypeError(
            f"expected VOCAB,SEQ_LEN (two positive integers, e.g. 50257,128), got {text!r}")
    return vocab, seq_len


def parse_channel_dim(text: str) -> int | None:
    """``"auto"`` -> None (inferred from the model), else the channel axis as an int.

    Examples:
        >>> parse_channel_dim("-1"), parse_channel_dim("auto")
        (-1, None)
    """
    if text.strip().lower() == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer axis (1 for (N, C, ...), -1 for (N, T, C)) or 'auto', "
            f"got {text!r}") from None


def parse_list(text: str) -> list[str]:
    """``"bn,none,nf"`` -> ``["bn", "none", "nf"]``."""
    return [s.strip() for s in text.split(",") if s.strip()]


def parse_key_values(items: list[str], option: str) -> dict[str, object]:
    """``KEY=VALUE`` options as a dict (values are Python literals where they parse as
    one, else strings).

    Examples:
        >>> parse_key_values(["depth=50", "norm=nf", "widths=[1, 2]"], "--model-arg")
        {'depth': 50, 'norm': 'nf', 'widths': [1, 2]}
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"{option} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value  # a bare string
    return out


# --- shared options ---------------------------------------------------------------------


def add_model_arguments(p: argparse.ArgumentParser, *, norms: bool = False,
                        optional: bool = False) -> None:
    """The positional ``MODEL`` and ``--model-arg``; with ``norms``, also ``--norm`` and
    ``--activation`` (commands that compare a preset's variants side by side).

    ``optional``: ``MODEL`` may be left out (``train`` reads it from a config file).
    """
    p.add_argument("model", metavar="MODEL", nargs="?" if optional else None,
                   help=MODEL_HELP + (" (default: the config file's)" if optional else ""))
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword for the model factory (repeatable; VALUE is a Python "
                   "literal), e.g. norm=none")
    if norms:
        p.add_argument("--norm", type=parse_list, default=None,
                       help="comma-separated norms to compare (presets: bn, none, nf)")
        p.add_argument("--activation", default=None,
                       help="activation for presets, e.g. relu, silu")


def add_input_arguments(p: argparse.ArgumentParser, *, batch_size: int = 8,
                        min_batch: int = 1, tokens: bool = False) -> None:
    """The options of the seeded Gaussian input batch and the module mode:
    --input-shape, --batch-size, --seed, --mode (see ``gaussian_input``); with ``tokens``
    also --tokens, --attention-mask and --channel-dim (see ``model_input``)."""
    p.add_argument("--input-shape", type=parse_shape, default=None,
                   help="one example's shape without the batch axis, e.g. 3,64,64 "
                   "(default: the preset's own)")
    if tokens:
        p.add_argument("--tokens", type=parse_tokens, default=None, metavar="VOCAB,SEQ_LEN",
                       help="feed integer token ids drawn uniformly from [0, VOCAB), "
                       "SEQ_LEN per example, instead of a Gaussian batch (language models)")
        p.add_argument("--attention-mask", choices=("ones", "padded"), default=None,
                       help="with --tokens: pass {'input_ids': ..., 'attention_mask': ...} "
                       "as keyword inputs; 'padded' masks a random tail of each example "
                       "(at least one token kept)")
        p.add_argument("--channel-dim", type=parse_channel_dim, default=None,
                       metavar="AXIS|auto",
                       help="channel axis of block outputs: 1 for (N, C, ...), -1 for "
                       "(N, T, C); auto infers it from the layers inside the blocks "
                       "(default: auto)")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"examples in the batch (>= {min_batch})")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the model's initialization and the input")
    p.add_argument("--mode", choices=("train", "eval"), default="train",
                   help="module mode: train uses batch statistics in BatchNorm, as in the paper")


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (progress bars on stderr; on by default)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show progress bars")


# --- building and writing ---------------------------------------------------------------


def prepare_out(path: Path, option: str = "--out") -> Path:
    """Create the output folder ``path`` (and its parents), or say in one line why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        reason = "a file is in the way" if isinstance(e, (FileExistsError, NotADirectoryError)) \
            else (e.strerror or str(e))
        raise CLIError(f"{option}: cannot create the folder {path} ({reason})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CLIError(f"{option}: the folder {path} is not writable")
    return path


def build_model(spec: str, kwargs: dict[str, object], seed: int) -> Any:
    """The model ``MODEL`` names (a preset such as ``resnetv2_50`` or ``module:function``),
    built with ``kwargs`` after seeding torch with ``seed``; any failure is a ``CLIError``."""
    import torch

    from signalprop import models

    torch.manual_seed(seed)
    try:
        return models.load_model(spec, **kwargs)
    except (ValueError, TypeError) as e:  # TypeError: a keyword the factory does not take
        raise CLIError(f"model {spec}: {e}") from None
    except Exception as e:  # noqa: BLE001 -- the user's factory raised: say so in one line
        raise CLIError(f"model {spec}: the factory raised {type(e).__name__}: {e}") from None


def model_variants(args: argparse.Namespace) -> list[tuple[str | None, str, dict[str, object]]]:
    """``(norm, label, factory keywords)`` of each model a command compares: one per
    ``--norm`` entry (or the model alone), with ``--model-arg`` and ``--activation``."""
    base = parse_key_values(args.model_arg, "--model-arg")
    if getattr(args, "activation", None):
        base["activation"] = args.activation
    norms: list[str | None] = list(args.norm) if getattr(args, "norm", None) else [None]
    return [(norm, args.model if norm is None else f"{args.model} {norm}",
             dict(base, **({"norm": norm} if norm is not None else {}))) for norm in norms]


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


def model_input(model: Any, args: argparse.Namespace) -> Any:
    """The command's input batch: token ids (``--tokens``, with ``--attention-mask`` a
    dict of keyword inputs) or the Gaussian batch of ``gaussian_input``."""
    tokens = getattr(args, "tokens", None)
    if tokens is None:
        if getattr(args, "attention_mask", None):
            raise CLIError("--attention-mask needs --tokens VOCAB,SEQ_LEN")
        return gaussian_input(model, args.model, args.input_shape, args.batch_size, args.seed)
    if args.input_shape is not None:
        raise CLIError("give --tokens or --input-shape, not both (token ids have the shape "
                       "(batch, SEQ_LEN))")
    return token_input(*tokens, args.batch_size, args.seed, args.attention_mask)


def token_input(vocab: int, seq_len: int, batch_size: int, seed: int,
                mask: str | None = None) -> Any:
    """Seeded token ids (batch_size, seq_len) uniform in [0, vocab); with ``mask``
    ("ones" or "padded") a dict with an ``attention_mask``.

    Examples:
        >>> x = token_input(100, 6, 2, seed=0, mask="padded")
        >>> sorted(x), tuple(x["input_ids"].shape), bool(x["attention_mask"][:, 0].all())
        (['attention_mask', 'input_ids'], (2, 6), True)
    """
    import torch

    if batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch_size, seq_len), generator=gen)
    if mask is None:
        return ids
    attention = torch.ones(batch_size, seq_len, dtype=torch.long)
    if mask == "padded":
        keep = torch.randint(1, seq_len + 1, (batch_size,), generator=gen)
        attention = (torch.arange(seq_len) < keep[:, None]).long()
    return {"input_ids": ids, "attention_mask": attention}


def describe_input(x: Any) -> str:
    """The input's shape(s) for printed titles: ``(8, 3, 32, 32)`` or ``input_ids (8, 16),
    attention_mask (8, 16)``."""
    if isinstance(x, dict):
        return ", ".join(f"{k} {tuple(v.shape)}" for k, v in x.items())
    return str(tuple(x.shape))


def write_results(results: list[Any], out: Path, stem: str) -> list[Path]:
    """``OUT/<stem>.csv`` (one table) and ``OUT/<stem>.json`` (a list of results) of
    results of one class; rewritten after every model, so a stopped run keeps its work."""
    from signalprop.results import write_csv

    csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
    write_csv(results, csv_path)
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps([r.to_dict() for r in results], indent=1, allow_nan=False))
    tmp.replace(json_path)  # whole or not at all, as Result.save
    return [csv_path, json_path]
