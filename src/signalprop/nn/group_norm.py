"""GroupNorm with a group count that always divides the channels."""

from __future__ import annotations

from typing import Any

import torch.nn as nn


def group_count(channels: int, groups: int = 32) -> int:
    """The largest divisor of ``channels`` that is at most ``groups``.

    Examples:
        >>> group_count(48, 32), group_count(256, 32), group_count(7, 32)
        (24, 32, 7)
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    return max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)


def group_norm(
    channels: int, groups: int = 32, eps: float = 1e-5, affine: bool = True, **factory: Any
) -> nn.GroupNorm:
    """``nn.GroupNorm(group_count(channels, groups), channels)``.

    GroupNorm normalizes each example on its own (per group of channels, over the group's
    channels and positions), so with Weight Standardization it replaces BatchNorm in
    batch-independent networks (Richemond et al. 2020).

    Examples:
        >>> group_norm(48).num_groups
        24
    """
    return nn.GroupNorm(group_count(channels, groups), channels, eps=eps, affine=affine,
                        **factory)
