"""A residual add that also measures: y = shortcut + alpha * branch, with the channel
statistics of ``branch`` and ``y`` taken while the add reads and writes them.

:func:`signalprop.spp` attaches this to signalprop's residual blocks (see
:meth:`signalprop.nn.ResidualBlock.residual_add`): measuring a block then costs no pass
over memory beyond the add itself, where forward hooks read each block output and each
branch output once more. The C kernel (``_cfused.c``) computes ``y`` with one rounding,
as ``torch.add`` does; before first use it is checked to reproduce ``torch.add`` bit for
bit on this machine, and it is not used otherwise. Tensors it does not handle
(accelerators, half precision, non-contiguous, differing shapes or dtypes, or an
autograd graph to record) go through ``torch.add`` and :func:`channel_moments`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from signalprop.measure.forward._moments import (
    ChannelMoments,
    _fast_layout,
    _from_sums,
    _layout,
    channel_moments,
)

try:  # built from _cfused.c at install; optional
    from signalprop.measure.forward._cfused import residual_add_sums as _c_residual_add_sums
except ImportError:  # pragma: no cover - depends on the build
    _c_residual_add_sums = None

# None: not checked yet; then whether the kernel reproduces torch.add bit for bit.
_kernel_matches_torch: bool | None = None


def _check_kernel() -> bool:
    """Run the kernel on inputs that exercise all its paths (long and short rows, both
    dtypes, alpha 1 and not) and compare with ``torch.add`` bit for bit."""
    if _c_residual_add_sums is None:
        return False
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        for shape in ((3, 5, 70), (20, 6, 5), (2, 3, 1)):
            x = torch.randn(shape, generator=gen, dtype=dtype) * 3
            b = torch.randn(shape, generator=gen, dtype=dtype)
            for alpha in (1.0, 0.2, -1.7):
                y = torch.empty_like(x)
                _c_residual_add_sums(x.numpy(), b.numpy(), y.numpy(), alpha, *shape, 1)
                if not torch.equal(y, torch.add(x, b, alpha=alpha)):
                    return False
    return True


def fused_add_available() -> bool:
    """Whether the measuring add runs in C here (built, and equal to ``torch.add``).

    Examples:
        >>> isinstance(fused_add_available(), bool)
        True
    """
    global _kernel_matches_torch
    if _kernel_matches_torch is None:
        _kernel_matches_torch = _check_kernel()
    return _kernel_matches_torch


def residual_add_moments(
    shortcut: Tensor, branch: Tensor, alpha: float, channel_dim: int = 1
) -> tuple[Tensor, ChannelMoments, ChannelMoments]:
    """``y = shortcut + alpha * branch`` and the channel statistics of ``branch`` and ``y``.

    ``y`` equals ``torch.add(shortcut, branch, alpha=alpha)`` exactly. Statistics as in
    :func:`channel_moments` (the exact path takes over under the same conditions).

    Examples:
        >>> x, b = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
        >>> y, mb, my = residual_add_moments(x, b, 0.2)
        >>> torch.equal(y, torch.add(x, b, alpha=0.2))
        True
    """
    if (
        _fast_layout(shortcut) and _fast_layout(branch)
        and branch.dtype == shortcut.dtype
        and branch.shape == shortcut.shape
        and not (torch.is_grad_enabled() and (shortcut.requires_grad or branch.requires_grad))
        and fused_add_available()
    ):
        outer, c, inner = _layout(shortcut, channel_dim)
        if outer * c * inner > 0:
            y = torch.empty_like(shortcut)  # strides of shortcut: contiguous
            # the kernel checks the three buffers' dtype, contiguity and length
            sq_b, ss_b, sq_y, ss_y = _c_residual_add_sums(  # type: ignore[misc]
                shortcut.detach().numpy(), branch.detach().numpy(), y.numpy(), float(alpha),
                outer, c, inner, torch.get_num_threads())
            n = outer * inner
            mb = _from_sums(n, c, sq_b, ss_b) or channel_moments(branch, channel_dim)
            my = _from_sums(n, c, sq_y, ss_y) or channel_moments(y, channel_dim)
            return y, mb, my
    y = torch.add(shortcut, branch, alpha=alpha)
    return y, channel_moments(branch, channel_dim), channel_moments(y, channel_dim)
