"""Learning-rate schedules as a pure function of the step, so a resumed run needs no state.

With base rate ``lr``, total steps ``T``, warm-up ``W`` steps and ``t`` the 0-based step:

    warm-up (t < W):  lr * (t + 1) / W                  (any schedule with W > 0)
    constant, warmup: lr
    step:             lr * gamma ** (number of milestones m with t >= m * T)
    cosine:           min_lr + (lr - min_lr) * (1 + cos(pi * s)) / 2,  s = (t - W) / (T - W - 1)
"""

from __future__ import annotations

import math

from signalprop.train.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """The learning rate used for the update at 0-based ``step`` of a ``total_steps`` run.

    Args:
        step: 0 <= step < total_steps.
        cfg: supplies ``lr``, ``schedule``, ``warmup_steps``, ``milestones``, ``gamma``,
            ``min_lr``.
        total_steps: length of the run in steps.

    Returns:
        The learning rate (formulas in the module docstring).

    Examples:
        >>> cfg = TrainConfig(lr=1.0, schedule="cosine", steps=11)
        >>> [round(lr_at(t, cfg, 11), 3) for t in (0, 5, 10)]
        [1.0, 0.5, 0.0]
    """
    if not 0 <= step < total_steps:
        raise ValueError(f"step must be in [0, {total_steps}), got {step}")
    warm = cfg.warmup_steps
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule in ("constant", "warmup"):
        return cfg.lr
    if cfg.schedule == "step":
        drops = sum(step >= m * total_steps for m in cfg.milestones)
        return cfg.lr * cfg.gamma**drops
    # cosine over the steps after warm-up; the last step reaches min_lr
    span = total_steps - warm - 1
    s = (step - warm) / span if span > 0 else 0.0
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * s))
