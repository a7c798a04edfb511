"""Learnable scalars on residual branches (SkipInit; De & Smith, NeurIPS 2020), and
stochastic depth on them (DropPath)."""

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

    Examples:
        >>> x = torch.randn(3)
        >>> torch.equal(BranchTap()(x), x)
        True
    """




class ResidualBlock(nn.Module):
    """Base class of residual blocks that expose their branch output to measurement.

    Subclasses compute ``out = shortcut(x) + scale * branch_tap(branch(x))``: the
    :class:`BranchTap` sits at the end of the branch, before any skip gain or alpha, where
    Brock et al. take the residual-branch variance. ``is_transition`` marks blocks that
    change resolution or width (the expected variance resets there).

    Subclasses whose forward ends with ``return self.residual_add(shortcut, branch,
    alpha)`` on the tapped branch, called once per forward (and that report so through
    :meth:`adds_tapped_branch`), let a measurement take the statistics of the branch and
    of the block output inside that add, which reads and writes them anyway (see
    :func:`signalprop.spp`).

    Examples:
        >>> class Residual(ResidualBlock):  # out = x + 0.5 * fc(x)
        ...     def __init__(self, width):
        ...         super().__init__()
        ...         self.fc, self.branch_tap = nn.Linear(width, width), BranchTap()
        ...     def forward(self, x):
        ...         return self.residual_add(x, self.branch_tap(self.fc(x)), 0.5)
        ...     def adds_tapped_branch(self):
        ...         return True
        >>> import signalprop as sp
        >>> r = sp.spp(nn.Sequential(Residual(8), Residual(8)), torch.randn(16, 8))
        >>> r.names, r.records[0].res_var is not None  # the blocks, and their branch variance
        (['0', '1'], True)
    """

    branch_tap: BranchTap
    is_transition: bool = False

    def residual_add(self, shortcut: Tensor, branch: Tensor, alpha: float = 1.0) -> Tensor:
        """``shortcut + alpha * branch``, exactly as ``torch.add(shortcut, branch,
        alpha=alpha)`` computes it. A measurement may replace this method on one instance
        while it runs (with an add that computes the same values).

        Examples:
            >>> block = ResidualBlock()
            >>> block.residual_add(torch.ones(2), torch.ones(2), 0.5).tolist()
            [1.5, 1.5]
        """
        if alpha == 1.0:
            return shortcut + branch
        return torch.add(shortcut, branch, alpha=alpha)

    def adds_tapped_branch(self) -> bool:
        """Whether the ``branch`` given to :meth:`residual_add` is the tapped branch
        itself (no skip gain or other change in between). False unless a subclass says
        otherwise.

        Examples:
            >>> ResidualBlock().adds_tapped_branch()
            False
        """
        return False


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: in training, each example's branch is
    dropped (set to 0) with probability ``p`` and kept ones are scaled by 1 / (1 - p).

    The branch's mean over the drop is unchanged, E[out] = f(x); its second moment grows to
    E[f(x)^2] / (1 - p). In eval mode, and at ``p = 0``, it is the identity. The drop
    draws from torch's global generator, so a seeded run is reproducible.

    Args:
        p: drop probability, in [0, 1).

    Examples:
        >>> drop = DropPath(0.5)
        >>> out = drop(torch.ones(1000, 4))  # each row is all 0 or all 2
        >>> sorted(set(out.flatten().tolist()))
        [0.0, 2.0]
        >>> torch.equal(drop.eval()(torch.ones(3, 4)), torch.ones(3, 4))
        True

    References:
        Huang, Sun, Liu, Sedra & Weinberger, "Deep networks with stochastic depth", ECCV
        2016 (arXiv 1603.09382); NF-ResNets use it with a rate growing linearly with the
        block index (Brock, De & Smith, ICLR 2021).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"p must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one draw per example
        keep = torch.rand(shape, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class ScalarBias(nn.Module):
    """Add a learnable scalar ``b`` (initialised to ``init``, default 0): ``x + b``.

    Fixup places one before every convolution, linear layer and activation of a residual
    branch, in place of the shift a normalization layer would learn. At ``b = 0`` it leaves
    mean and variance unchanged.

    Examples:
        >>> ScalarBias(0.5)(torch.zeros(2)).tolist()
        [0.5, 0.5]

    References:
        Zhang, Dauphin & Ma, "Fixup initialization: residual learning without
        normalization", ICLR 2019 (arXiv 1901.09321).
    """

    def __init__(self, init: float = 0.0, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.init = float(init)
        self.bias = nn.Parameter(torch.full((), self.init, device=device, dtype=dtype))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.bias.fill_(self.init)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias

    def extra_repr(self) -> str:
        return f"init={self.init:g}"


class ReZero(ResidualBlock):
    """``x + a * f(x)`` with a learnable scalar ``a`` initialised to 0 (no normalization).

    Wraps any shape-preserving branch ``f``. At ``a = 0`` the block is the identity, so
    a stack of ReZero blocks passes its input's mean and variance through unchanged at
    initialisation; the output variance is ``Var(x) + a^2 Var(f(x))`` for a branch
    uncorrelated with its input. The gain is a :class:`SkipInit` (``self.skip_gain``) and
    the branch output is exposed to measurement through ``self.branch_tap``.

    Args:
        branch: the residual function ``f`` (output shaped like its input).
        init: initial value of ``a`` (0 in the paper).

    Examples:
        >>> block = ReZero(nn.Linear(4, 4))
        >>> x = torch.randn(3, 4)
        >>> torch.equal(block(x), x)
        True

    References:
        Bachlechner, Majumder, Mao, Cottrell & McAuley, "ReZero is all you need: fast
        convergence at large depth", UAI 2021 (arXiv 2003.04887).
    """

    def __init__(self, branch: nn.Module, init: float = 0.0) -> None:
        super().__init__()
        if not isinstance(branch, nn.Module):
            raise ValueError(f"branch must be an nn.Module, got {type(branch).__name__}")
        self.branch = branch
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(init)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.skip_gain(self.branch_tap(self.branch(x)))
