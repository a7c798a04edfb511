"""The training configuration: one flat dataclass, validated, JSON/YAML round-trippable.

Every field is something a sweep can vary. Dict fields (``model_args``, ``dataset_args``)
are passed to the model factory and the dataset loader; a sweep addresses their entries
as ``model_args.width``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from signalprop.train._mapping import read_mapping  # noqa: F401 -- the config file reader

OPTIMIZERS = ("sgd", "nesterov", "adam", "nag")
QUANTIZE = ("bc", "sr", "r")
SCHEDULES = ("constant", "step", "cosine", "warmup", "exp")
OBJECTIVES = ("supervised", "byol")
AMP = ("bfloat16", "float16")
DEVICES = "cpu, cuda, cuda:N (GPU number N), auto (cuda where there is a GPU, else cpu)"

# Fields that change where files go or what is printed, never the trained weights.
OUTPUT_FIELDS = ("log_every", "eval_every", "checkpoint_every", "log_effective_lr")
# Fields that choose where a run executes, not what it computes (like a thread count): left
# out of the run key, the resume check and a sweep's identity, so a run can finish on
# another device than it started on and a sweep can move between machines.
PLACEMENT_FIELDS = ("device",)
# Fields added after run keys were first stored, with the value that means "as before":
# at that value they stay out of the run key, so earlier runs and sweeps keep their keys.
LATE_DEFAULTS: dict[str, Any] = {"amp": None, "exp_weight_decay": 0.0,
                                 "objective": "supervised", "objective_args": {}}
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:\d+)?")


@dataclass
class TrainConfig:
    """Everything that determines a training run (with the seed, the final weights).

    Examples:
        >>> cfg = TrainConfig(model="resnetv2_50", dataset="digits", lr=0.05, steps=100)
        >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    # model: a preset ('signalprop models') or package.module:factory, and its keywords
    model: str = "resnetv2_50"
    model_args: dict[str, Any] = field(default_factory=dict)
    # data: a name from signalprop.data.list_datasets() and the loader's options
    dataset: str = "gaussian"
    dataset_args: dict[str, Any] = field(default_factory=dict)
    # optimizer: sgd (heavy-ball momentum), nesterov (torch's SGD nesterov=True),
    # adam (betas, eps), nag (Sutskever's Nesterov accelerated gradient)
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    # learning-rate schedule (see signalprop.train.lr_at)
    schedule: str = "constant"
    warmup_steps: int = 0
    milestones: tuple[float, ...] = (0.5, 0.75)  # step schedule: fractions of the run
    gamma: float = 0.1  # step schedule: factor at each milestone
    min_lr: float = 0.0  # cosine: final learning rate
    # exp schedule: the weight decay it stands in for (Li & Arora 2020); see lr_at
    exp_weight_decay: float = 0.0
    # training objective: "supervised" (cross-entropy) or "byol" (self-supervised, see
    # signalprop.train.byol) with its options
    objective: str = "supervised"
    objective_args: dict[str, Any] = field(default_factory=dict)
    # length: exactly one of epochs / steps
    batch_size: int = 128
    epochs: int | None = None
    steps: int | None = None
    # adaptive gradient clipping (signalprop.optim.AGC) when set
    agc_clipping: float | None = None
    # quantized layers trained by BinaryConnect / stochastic rounding / rounding
    # (signalprop.optim.QuantizedTraining) when set; the model must hold quantized layers
    quantize: str | None = None
    seed: int = 0
    # cadence (steps); 0 = never for checkpoints, once per epoch and at the end for eval
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 0
    # log lr / ||w||^2 of the scale-invariant weights (signalprop.measure.effective_lr)
    log_effective_lr: bool = False
    # where it runs: cpu, cuda, cuda:N or auto (see signalprop.train.resolve_device); the
    # data stays on the CPU and batches are copied over
    device: str = "cpu"
    # mixed precision: autocast to bfloat16, or float16 with a gradient scaler (None: off)
    amp: str | None = None

    def __post_init__(self) -> None:
        for name in ("model_args", "dataset_args", "objective_args"):
            if getattr(self, name) is None:  # 'model_args:' left empty in a YAML file
                setattr(self, name, {})
        self.betas = _floats("betas", self.betas, "two numbers in [0, 1)")  # type: ignore[assignment]
        self.milestones = _floats("milestones", self.milestones,
                                  "increasing fractions in (0, 1)")
        for name in ("lr", "momentum", "eps", "weight_decay", "gamma", "min_lr",
                     "exp_weight_decay"):
            setattr(self, name, _number(name, getattr(self, name), float))
        for name in ("batch_size", "warmup_steps", "seed", "log_every", "eval_every",
                     "checkpoint_every"):
            setattr(self, name, _number(name, getattr(self, name), int))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field, the value and what is allowed.

        Numeric fields also take numbers written as strings (``"1e-3"``, ``"100"``), as
        YAML 1.1 readers and hand-written JSON produce them; they are converted.
        """
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        if self.quantize is not None:
            _choice("quantize", self.quantize, QUANTIZE)
        if self.amp is not None:
            _choice("amp", self.amp, AMP)
        if not isinstance(self.device, str) or not DEVICE_PATTERN.fullmatch(self.device):
            raise ValueError(f"device={self.device!r} is not allowed; valid: {DEVICES}")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a preset name or 'package.module:factory', "
                             f"got {self.model!r}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset must be a dataset name such as 'digits' "
                             f"(signalprop.data.list_datasets()), got {self.dataset!r}")
        for name in ("model_args", "dataset_args", "objective_args"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping, got {getattr(self, name)!r}")
        _positive("lr", self.lr, strict=True)
        _positive("eps", self.eps, strict=True)
        _positive("weight_decay", self.weight_decay)
        _positive("min_lr", self.min_lr)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        if any(not 0.0 < m < 1.0 for m in self.milestones) or list(self.milestones) != sorted(
                self.milestones):
            raise ValueError(f"milestones must be increasing fractions in (0, 1), "
                             f"got {self.milestones!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(f"set exactly one of epochs and steps, got epochs={self.epochs!r}, "
                             f"steps={self.steps!r}")
        for name in ("epochs", "steps"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _number(name, value, int))
                if getattr(self, name) < 1:
                    raise ValueError(f"{name} must be >= 1, got {value!r}")
        if self.agc_clipping is not None:
            self.agc_clipping = _number("agc_clipping", self.agc_clipping, float)
            _positive("agc_clipping", self.agc_clipping, strict=True)
        for name in ("warmup_steps", "seed", "log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every!r}")
        if self.schedule == "warmup" and self.warmup_steps < 1:
            raise ValueError("schedule 'warmup' needs warmup_steps >= 1, "
                             f"got {self.warmup_steps!r}")
        self._validate_identity_fields()

    def _validate_identity_fields(self) -> None:
        """The objective, the exp schedule's conditions and the effective-lr logging flag."""
        _choice("objective", self.objective, OBJECTIVES)
        if not isinstance(self.log_effective_lr, bool):
            raise ValueError(f"log_effective_lr must be true or false, "
                             f"got {self.log_effective_lr!r}")
        _positive("exp_weight_decay", self.exp_weight_decay)
        if self.schedule == "exp":
            _check_exp(self)

    # --- serialization ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys are rejected with the valid ones listed.

        Keys may be dotted (``model_args.width``) to set one entry of a dict field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a training config must be a mapping, got {type(data).__name__}")
        return cls(**_nest(data))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (dotted keys allowed), validated."""
        return TrainConfig.from_dict({**self.to_dict(), **_nest(changes, base=self.to_dict())})

    def key_fields(self) -> dict[str, Any]:
        """The fields that define what the run computes: :meth:`to_dict` less the output
        cadences, the device, and late-added fields left at their "as before" value.

        Examples:
            >>> cfg = TrainConfig(steps=1, device="auto")
            >>> sorted(set(cfg.to_dict()) - set(cfg.key_fields()))[:4]
            ['amp', 'checkpoint_every', 'device', 'eval_every']
        """
        return {k: v for k, v in self.to_dict().items()
                if k not in OUTPUT_FIELDS and k not in PLACEMENT_FIELDS
                and not (k in LATE_DEFAULTS and v == LATE_DEFAULTS[k])}

    def run_key(self) -> str:
        """A short stable hash of :meth:`key_fields` (what affects the trained weights;
        the same on every device)."""
        d = self.key_fields()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def field_names() -> list[str]:
    """Names of all config fields, in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def check_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` (possibly dotted) names a config field."""
    head, dot, _ = key.partition(".")
    names = field_names()
    if head not in names:
        close = difflib.get_close_matches(head, names, n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(names)}")
    if dot and head not in ("model_args", "dataset_args", "objective_args"):
        raise ValueError(f"config key {key!r}: only model_args, dataset_args and "
                         "objective_args take dotted sub-keys")


def _nest(data: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        check_key(key)
        head, dot, sub = key.partition(".")
        if dot:
            current = out.get(head, dict((base or {}).get(head, {})))
            current = dict(current)
            current[sub] = value
            out[head] = current
        else:
            out[key] = value
    return out


def _check_exp(cfg: TrainConfig) -> None:
    """The exp schedule's conditions: a weight decay to stand in for, SGD, no warm-up."""
    if cfg.exp_weight_decay <= 0:
        raise ValueError("schedule 'exp' needs exp_weight_decay > 0 (the weight decay it "
                         f"stands in for), got {cfg.exp_weight_decay!r}")
    if cfg.optimizer != "sgd" or cfg.warmup_steps:
        raise ValueError("schedule 'exp' is the equivalent of SGD with momentum and weight "
                         f"decay: it needs optimizer 'sgd' and no warm-up, got optimizer="
                         f"{cfg.optimizer!r}, warmup_steps={cfg.warmup_steps}")
    from signalprop.train.schedules import exp_alpha

    exp_alpha(cfg.lr, cfg.momentum, cfg.exp_weight_decay)  # raises when no real root


def _floats(name: str, value: Any, allowed: str) -> tuple[float, ...]:
    if isinstance(value, (str, bytes, dict)):
        raise ValueError(f"{name} must be {allowed} (a list), got {value!r}")
    try:
        return tuple(_number(name, v, float) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be {allowed} (a list), got {value!r}") from None


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value).lower(), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name}={value!r} is not allowed{hint}; valid: {', '.join(allowed)}")


# a number written as text: "1e6", "-0.5", "1_000" (what float() and int() accept)
_NUMBER = re.compile(r"[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?")


def _number(name: str, value: Any, kind: type) -> Any:
    given = value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip().replace("_", "")
        value = int(text) if kind is int and text.lstrip("+-").isdigit() else float(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                         f"got {given!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {given!r}")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{name} must be an integer, got {given!r}")
        return int(value)
    return float(value)


def _positive(name: str, value: float, strict: bool = False) -> None:
    if value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}, got {value!r}")
