"""Learnable scalars on residual branches (SkipInit; De & Smith, NeurIPS 2020)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor


class SkipInit(nn.Module):
    """Multiply a residual branch by a learnable scalar ``a`` (initialised to ``init``).

    With ``init=0`` every block is the identity at initialisation, so an unnormalized
    residual network of any depth starts with the signal variance of its input: the
    branch contributes ``a^2 * Var(f(x))`` to the block output.

    Examples:
        >>> gate = SkipInit(0.0)
        >>> gate(torch.ones(3)).tolist()
        [0.0, 0.0, 0.0]

    References:
        De & Smith, "Batch normalization biases residual blocks towards the identity
        function in deep networks", NeurIPS 2020 (arXiv 2002.10444).
    """

    def __init__(self, init: float = 0.0, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.init = float(init)
        self.gain = nn.Parameter(torch.full((), self.init, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.gain.fill_(self.init)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gain

    def extra_repr(self) -> str:
        return f"init={self.init:g}"


class BranchTap(nn.Identity):
    """An identity marking the end of a residual branch (before any gain or alpha).

    Measurement hooks read the residual-branch statistics here; it costs nothing.
    """


class ResidualBlock(nn.Module):
    """Base class of residual blocks that expose their branch output to measurement.

    Subclasses compute ``out = shortcut(x) + scale * branch_tap(branch(x))``: the
    :class:`BranchTap` sits at the end of the branch, before any skip gain or alpha, where
    Brock et al. take the residual-branch variance. ``is_transition`` marks blocks that
    change resolution or width (the expected variance resets there).
    """

    branch_tap: BranchTap
    is_transition: bool = False
