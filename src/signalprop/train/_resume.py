"""Checking a run's checkpoint before resuming from it.

A checkpoint written by ``fit`` holds ``step``, ``model``, ``optimizer``, ``rng``,
``seconds``, ``window`` (loss sum, correct, examples since the last train record),
``config`` (JSON) and ``log_step`` (the step of the last train record); optionally
``device`` (where it was written), ``cuda_rng`` (the GPU's RNG state per process) and
``scaler`` (float16's loss scale). Every field is checked before anything is loaded, and
the fields are checked against each other, the run's length and the metrics file, so that
a damaged, edited or foreign file is refused with a message naming the file and the field
instead of resuming into a wrong run:

    0 <= step <= total steps
    log_step + window examples / batch_size == step    (train records since the last)
    optimizer step counters (Adam) == step    (<= step with float16's loss scaler)
    metrics.jsonl has the train record of log_step
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from signalprop.train.checkpoint import CheckpointError
from signalprop.train.config import DEVICE_PATTERN, TrainConfig

# field -> (accepted types, what it must be)
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "step": ((int,), "an integer"),
    "model": ((dict,), "a state dict"),
    "optimizer": ((dict,), "an optimizer state dict"),
    "rng": ((list,), "a list of random generator states"),
    "seconds": ((int, float), "a number"),
    "window": ((list,), "a list of three numbers"),
    "config": ((str,), "the run's config as JSON text"),
}
_START_OVER = "delete it to start the run over"


def _bad(path: Path, text: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: {text}; it is damaged, was edited or belongs "
                           f"to another run: {_START_OVER}")


def check_fields(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """Each field present with its type and in range; returns the saved config (a dict)."""
    for name, (types, what) in FIELDS.items():
        if name not in state:
            raise CheckpointError(f"checkpoint {path} has no field {name!r} (it has "
                                  f"{', '.join(map(str, state))}): it was not written by "
                                  f"signalprop.train.fit; {_START_OVER}")
        value = state[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise _bad(path, f"field {name!r} must be {what}, got {type(value).__name__}")
    if state["step"] < 0:
        raise _bad(path, f"field 'step' is {state['step']}, negative")
    window = state["window"]
    if len(window) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
                                   for v in window):
        raise _bad(path, f"field 'window' must be three non-negative numbers, got {window!r}")
    if not all(isinstance(r, torch.Tensor) and r.dtype == torch.uint8 for r in state["rng"]):
        raise _bad(path, "field 'rng' must hold uint8 tensors (torch.get_rng_state())")
    try:
        saved = json.loads(state["config"])
    except json.JSONDecodeError as e:
        raise _bad(path, f"field 'config' is not JSON ({e})") from None
    if not isinstance(saved, dict):
        raise _bad(path, f"field 'config' must be a JSON mapping, got {type(saved).__name__}")
    return saved


def check_same_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    """The checkpoint's config equals ``cfg`` in every field that affects the weights
    (``TrainConfig.key_fields``: not the device, so a run may resume on another one)."""
    now = cfg.key_fields()
    diff = [k for k in now if saved.get(k) != now[k]]
    if diff:
        raise ValueError(f"cannot resume from {path}: the config differs in "
                         + ", ".join(f"{k} (saved {saved.get(k)!r}, now {now[k]!r})"
                                     for k in diff))


def check_progress(state: dict[str, Any], path: Path, total: int, batch_size: int,
                   skipped_steps: bool = False) -> None:
    """``step`` agrees with the run's length, the log window and the optimizer state (which
    may count fewer steps with ``skipped_steps``: float16's scaler skips overflows)."""
    step = state["step"]
    if step > total:
        raise _bad(path, f"field 'step' is {step}, more than the run's {total} steps")
    log_step = state.get("log_step")
    if log_step is not None:  # older checkpoints lack it
        since = state["window"][2] / batch_size
        if isinstance(log_step, bool) or not isinstance(log_step, int) or (
                log_step + since != step):
            raise _bad(path, f"field 'step' is {step}, but the last train record was at step "
                       f"{log_step!r} and {since:g} steps were taken since")
    counts = {int(s["step"]) for s in state["optimizer"].get("state", {}).values()
              if isinstance(s, dict) and "step" in s}
    if counts and (max(counts) > step or (max(counts) < step and not skipped_steps)):
        raise _bad(path, f"field 'step' is {step}, but the optimizer state has taken "
                   f"{max(counts)} steps")


def check_device_state(state: dict[str, Any], path: Path, cfg: TrainConfig,
                       device: torch.device) -> None:
    """The optional device fields (``device``, ``cuda_rng``, ``scaler``) are well formed,
    and a stochastic-rounding run stays on the kind of device whose RNG it saved."""
    saved = state.get("device", "cpu")
    if not isinstance(saved, str) or not DEVICE_PATTERN.fullmatch(saved) or saved == "auto":
        raise _bad(path, f"field 'device' must name a device such as 'cpu' or 'cuda:0', "
                   f"got {saved!r}")
    rngs = state.get("cuda_rng", [])
    if not isinstance(rngs, list) or not all(
            isinstance(r, torch.Tensor) and r.dtype == torch.uint8 for r in rngs):
        raise _bad(path, "field 'cuda_rng' must be a list of uint8 tensors "
                   "(torch.cuda.get_rng_state())")
    if not isinstance(state.get("scaler", {}), dict):
        raise _bad(path, "field 'scaler' must be a GradScaler state dict")
    if cfg.quantize == "sr" and torch.device(saved).type != device.type:
        raise ValueError(f"cannot resume {path} on {device}: it was written on {saved} by a "
                         "quantize='sr' run, whose stochastic-rounding RNG belongs to that "
                         f"kind of device; resume it with device '{torch.device(saved).type}'")


def check_history(records: list[dict[str, Any]], state: dict[str, Any], path: Path,
                  metrics: Path) -> None:
    """``metrics.jsonl`` holds the train record the checkpoint was written after."""
    log_step = state.get("log_step") or 0
    if log_step and not any(r.get("step") == log_step and r.get("split") == "train"
                            for r in records):
        last = max((r.get("step", 0) for r in records), default=None)
        has = f"its last record is step {last}" if last is not None else "it has no records"
        raise CheckpointError(
            f"checkpoint {path} was written after the train record of step {log_step}, "
            f"but {metrics} lacks it ({has}): the two files do not belong together; "
            f"restore {metrics.name} or delete {path.name} to start the run over")


def load_states(state: dict[str, Any], path: Path, model: torch.nn.Module,
                optimizer: torch.optim.Optimizer) -> None:
    """Load the model and optimizer fields; a mismatch names the field and the cause."""
    for name, target in (("model", model), ("optimizer", optimizer)):
        try:
            target.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            first = " ".join(str(e).split())[:300]
            raise _bad(path, f"field {name!r} does not fit the {name} ({first})") from e
