"""Optimizer parameter groups: weights, and scalar gains and biases on their own terms."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch.nn as nn


def _is_scalar_or_vector(name: str, p: nn.Parameter) -> bool:
    return p.dim() <= 1


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    scalar_lr_mult: float = 1.0,
    is_scalar: Callable[[str, nn.Parameter], bool] | None = None,
) -> list[dict[str, Any]]:
    """Two parameter groups for a torch optimizer: weights, and scalars/gains/biases.

    Weights (tensors of 2 or more dimensions) get ``lr`` and ``weight_decay``. Scalar gains
    (SkipInit, ReZero, Fixup's multipliers and biases), per-unit gains (Scaled WS,
    normalization affine weights) and biases -- every parameter of at most one dimension,
    or those ``is_scalar`` selects -- get ``lr * scalar_lr_mult`` and no weight decay:
    decaying them pulls a residual gain or a gain of 1 towards 0, which is not a
    regularizer of the function's complexity. Fixup trains its scalars at lr/10
    (``scalar_lr_mult=0.1``). Frozen parameters are left out; shared ones appear once.

    Args:
        model: the model.
        lr: base learning rate (> 0).
        weight_decay: for the weights (>= 0).
        scalar_lr_mult: learning-rate multiplier of the scalar group (> 0).
        is_scalar: predicate ``f(name, parameter) -> bool`` overriding the dimension rule.

    Returns:
        ``[{"name": "weights", "params": [...], "lr": lr, "weight_decay": weight_decay,
        "lr_mult": 1.0}, {"name": "scalars", ..., "lr_mult": scalar_lr_mult,
        "weight_decay": 0.0}]``, without empty groups.

    Examples:
        >>> import torch
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        >>> groups = param_groups(net, lr=0.1, weight_decay=5e-5, scalar_lr_mult=0.1)
        >>> [(g["name"], len(g["params"]), g["lr"], g["weight_decay"]) for g in groups]
        [('weights', 1, 0.1, 5e-05), ('scalars', 3, 0.010000000000000002, 0.0)]
        >>> opt = torch.optim.SGD(groups, lr=0.1)

    References:
        Zhang, Dauphin & Ma (Fixup), ICLR 2019; Brock et al. (NFNets), arXiv 2102.06171.
    """
    for arg, value, ok in (("lr", lr, lr > 0), ("weight_decay", weight_decay, weight_decay >= 0),
                           ("scalar_lr_mult", scalar_lr_mult, scalar_lr_mult > 0)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
            allowed = ">= 0" if arg == "weight_decay" else "> 0"
            raise ValueError(f"{arg} must be a finite number {allowed}, got {value!r}")
    pred = is_scalar if is_scalar is not None else _is_scalar_or_vector
    weights, scalars = [], []
    for name, p in model.named_parameters():  # shared parameters are listed once
        if not p.requires_grad:
            continue
        (scalars if pred(name, p) else weights).append(p)
    groups = [
        {"name": "weights", "params": weights, "lr": lr, "weight_decay": weight_decay,
         "lr_mult": 1.0},
        {"name": "scalars", "params": scalars, "lr": lr * scalar_lr_mult, "weight_decay": 0.0,
         "lr_mult": scalar_lr_mult},
    ]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError(f"{type(model).__name__} has no trainable parameter")
    return groups
