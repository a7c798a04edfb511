"""Learning-rate schedules as a pure function of the step, so a resumed run needs no state.

With base rate ``lr``, total steps ``T``, warm-up ``W`` steps and ``t`` the 0-based step:

    warm-up (t < W):  lr * (t + 1) / W                  (any schedule with W > 0)
    constant, warmup: lr
    step:             lr * gamma ** (number of milestones m with t >= m * T)
    cosine:           min_lr + (lr - min_lr) * (1 + cos(pi * s)) / 2,  s = (t - W) / (T - W - 1)
    exp:              lr * alpha^(-2t - 1)

``exp`` is Li & Arora's exponential schedule (ICLR 2020, arXiv 1910.07454): for weights the
loss does not depend on the scale of (every trained weight followed by a normalization),
SGD with heavy-ball momentum gamma, weight decay lambda and a fixed rate eta produces, step
by step, the same network functions as SGD with momentum gamma, *no* weight decay and the
rate eta alpha^(-2t-1), where alpha is the larger root of

    x^2 - (1 + gamma - lambda eta) x + gamma = 0

(real when lambda eta <= (1 - sqrt(gamma))^2; gamma = 0 gives alpha = 1 - lambda eta).
The weights of the second run are those of the first times alpha^(-t). Conditions,
derived for torch's SGD (the momentum buffer b <- gamma b + g is multiplied by the current
rate when applied, which is what makes alpha^-2 the per-step growth) and checked to 1e-10
in float64 by tests/train/test_train_schedules.py:

* every trained parameter is scale-invariant (no trained biases, BatchNorm affines or
  classifier; the normalization uses batch statistics) and both runs see the same batches;
* the second run's momentum buffers start at b_0 = (alpha - 1) theta_0 / (eta alpha)
  (the paper's theta_{-1} = alpha theta_{-1}); with zero buffers the runs differ slightly.

``exp_weight_decay`` is lambda (the run itself uses ``weight_decay = 0``).
"""

from __future__ import annotations

import math

from signalprop.train.config import TrainConfig


def exp_alpha(lr: float, momentum: float, weight_decay: float) -> float:
    """The growth root alpha of Li & Arora's schedule lr * alpha^(-2t - 1).

    The larger root of x^2 - (1 + momentum - weight_decay * lr) x + momentum = 0.

    Raises:
        ValueError: the roots are complex (weight_decay * lr > (1 - sqrt(momentum))^2)
            or alpha would not be positive.

    Examples:
        >>> round(exp_alpha(0.1, 0.9, 5e-4), 6)  # ~ 1 - lr wd / (1 - momentum)
        0.999498
        >>> exp_alpha(0.1, 0.0, 0.5)
        0.95
    """
    disc = (1.0 + momentum - weight_decay * lr) ** 2 - 4.0 * momentum
    if disc < 0:
        raise ValueError(
            f"no real exponential schedule for lr={lr}, momentum={momentum}, weight decay "
            f"{weight_decay}: needs weight_decay * lr <= (1 - sqrt(momentum))^2 = "
            f"{(1 - math.sqrt(momentum)) ** 2:.6g}")
    alpha = 0.5 * (1.0 + momentum - weight_decay * lr + math.sqrt(disc))
    if not alpha > 0:
        raise ValueError(f"weight_decay * lr = {weight_decay * lr} >= 1 + momentum: the "
                         "weight decay alone would flip the weights' sign")
    return alpha


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """The learning rate used for the update at 0-based ``step`` of a ``total_steps`` run.

    Args:
        step: 0 <= step < total_steps.
        cfg: supplies ``lr``, ``schedule``, ``warmup_steps``, ``milestones``, ``gamma``,
            ``min_lr`` (and ``momentum``, ``exp_weight_decay`` for ``exp``).
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
    if cfg.schedule == "exp":
        alpha = exp_alpha(cfg.lr, cfg.momentum, cfg.exp_weight_decay)
        return cfg.lr * alpha ** (-2 * step - 1)
    if cfg.schedule == "step":
        drops = sum(step >= m * total_steps for m in cfg.milestones)
        return cfg.lr * cfg.gamma**drops
    # cosine over the steps after warm-up; the last step reaches min_lr
    span = total_steps - warm - 1
    s = (step - warm) / span if span > 0 else 0.0
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * s))
