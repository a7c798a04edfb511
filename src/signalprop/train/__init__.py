"""Training: a config dataclass, a resumable deterministic loop, optimizers and schedules.

Example:
    >>> from signalprop.train import TrainConfig, fit
    >>> cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 4,
    ...     "out_features": 3}, dataset="iris", lr=0.1, steps=20, batch_size=16)
    >>> fit(cfg, progress=False).status
    'completed'
"""

from signalprop.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from signalprop.train.config import OPTIMIZERS, SCHEDULES, TrainConfig
from signalprop.train.metrics import read_metrics
from signalprop.train.optimizers import NAG, build_optimizer
from signalprop.train.schedules import lr_at
from signalprop.train.trainer import TrainResult, epoch_permutation, evaluate, fit

__all__ = [
    "NAG",
    "OPTIMIZERS",
    "SCHEDULES",
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "build_optimizer",
    "epoch_permutation",
    "evaluate",
    "fit",
    "load_checkpoint",
    "lr_at",
    "read_metrics",
    "save_checkpoint",
]
