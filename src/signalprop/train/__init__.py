"""Training: a config dataclass, a resumable deterministic loop, optimizers and schedules.

``signalprop.train.config`` needs no torch, so the command line can build its options
from ``TrainConfig`` cheaply; the torch-backed names below load on first use.

Examples:
    >>> from signalprop.train import TrainConfig, fit
    >>> cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 4,
    ...     "out_features": 3}, dataset="iris", lr=0.1, steps=20, batch_size=16)
    >>> fit(cfg, progress=False).status
    'completed'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from signalprop.train.config import OBJECTIVES, OPTIMIZERS, SCHEDULES, TrainConfig

# public name -> module that defines it (imported on first use: these need torch)
_LAZY = {
    "CheckpointError": "signalprop.train.checkpoint",
    "load_checkpoint": "signalprop.train.checkpoint",
    "save_checkpoint": "signalprop.train.checkpoint",
    "read_metrics": "signalprop.train.metrics",
    "NAG": "signalprop.train.optimizers",
    "build_optimizer": "signalprop.train.optimizers",
    "lr_at": "signalprop.train.schedules",
    "exp_alpha": "signalprop.train.schedules",
    "check_run": "signalprop.train._preflight",
    "Placement": "signalprop.train.device",
    "resolve_device": "signalprop.train.device",
    "TrainResult": "signalprop.train.trainer",
    "epoch_permutation": "signalprop.train.trainer",
    "evaluate": "signalprop.train.trainer",
    "fit": "signalprop.train.trainer",
}

if TYPE_CHECKING:
    from signalprop.train._preflight import check_run
    from signalprop.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from signalprop.train.device import Placement, resolve_device
    from signalprop.train.metrics import read_metrics
    from signalprop.train.optimizers import NAG, build_optimizer
    from signalprop.train.schedules import exp_alpha, lr_at
    from signalprop.train.trainer import TrainResult, epoch_permutation, evaluate, fit


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'signalprop.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "NAG",
    "OBJECTIVES",
    "OPTIMIZERS",
    "SCHEDULES",
    "CheckpointError",
    "Placement",
    "TrainConfig",
    "TrainResult",
    "build_optimizer",
    "check_run",
    "epoch_permutation",
    "evaluate",
    "exp_alpha",
    "fit",
    "load_checkpoint",
    "lr_at",
    "read_metrics",
    "resolve_device",
    "save_checkpoint",
]
