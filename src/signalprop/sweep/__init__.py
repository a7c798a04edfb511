"""Sweeps: a grid of training runs over config fields and seeds, recorded in SQLite.

Examples:
    >>> from signalprop.sweep import SweepSpec
    >>> spec = SweepSpec.from_dict({"base": {"model": "torch.nn:Linear", "dataset": "iris",
    ...     "steps": 10}, "grid": {"lr": [0.1, 0.01]}, "seeds": 2})
    >>> [r.label for r in spec.runs()]
    ['lr=0.1 seed=0', 'lr=0.1 seed=1', 'lr=0.01 seed=0', 'lr=0.01 seed=1']
"""

from signalprop.sweep.db import STATUSES, SweepDB, SweepDBError
from signalprop.sweep.runner import SweepSummary, driver_active, run_sweep
from signalprop.sweep.spec import RunSpec, SweepSpec
from signalprop.sweep.status import sweep_status

__all__ = [
    "STATUSES",
    "RunSpec",
    "SweepDB",
    "SweepDBError",
    "SweepSpec",
    "SweepSummary",
    "driver_active",
    "run_sweep",
    "sweep_status",
]
