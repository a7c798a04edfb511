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
    _from_sums,
    _shape_layout,
    channel_moments,
)

try:  # built from _cfused.c at install; optional
    from signalprop.measure.forward._cfused import residual_add_sums as _c_residual_add_sums
    from signalprop.measure.forward._cfused import (
        residual_add_sums_at as _c_residual_add_sums_at,
    )
except ImportError:  # pragma: no cover - depends on the build
    _c_residual_add_sums = _c_residual_add_sums_at = None

# None: not checked yet; then whether the kernel reproduces torch.add bit for bit.
_kernel_matches_torch: bool | None = None


def _check_kernel() -> bool:
    """Run the kernel on inputs that exercise all its paths (long and short rows, both
    dtypes, alpha 1 and not) and compare with ``torch.add`` bit for bit."""
    if _c_residual_add_sums is None or _c_residual_add_sums_at is None:
        return False
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        for shape in ((3, 5, 70), (20, 6, 5), (2, 3, 1)):
            x = torch.randn(shape, generator=gen, dtype=dtype) * 3
            b = torch.randn(shape, generator=gen, dtype=dtype)
            for alpha in (1.0, 0.2, -1.7):
                y, y_at = torch.empty_like(x), torch.empty_like(x)
                sums = _c_residual_add_sums(x.numpy(), b.numpy(), y.numpy(), alpha, *shape, 1)
                sums_at = _c_residual_add_sums_at(  # type: ignore[misc]
                    x.data_ptr(), b.data_ptr(), y_at.data_ptr(), dtype is torch.float64,
                    alpha, *shape, 1)
                ref = torch.add(x, b, alpha=alpha)
                if not (torch.equal(y, ref) and torch.equal(y_at, ref) and sums == sums_at):
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


def fused_sums(
    shortcut: Tensor, branch: Tensor, alpha: float, channel_dim: int = 1
) -> tuple[Tensor, int, int, tuple[float, float, float, float]] | None:
    """``y = shortcut + alpha * branch`` through the C kernel, with the raw sums it took:
    ``(y, n, c, (sum_c B_c^2, sum b^2, sum_c Y_c^2, sum y^2))`` (``n`` elements per
    channel, ``c`` channels); None where the kernel does not take these tensors (see
    :func:`residual_add_moments`), and nothing is computed then.

    Examples:
        >>> x, b = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
        >>> out = fused_sums(x, b, 0.5)
        >>> out is None or torch.equal(out[0], torch.add(x, b, alpha=0.5))
        True
    """
    if not fused_add_available():
        return None
    # What the kernel needs, all checked here, right before the call that hands it the
    # tensors' addresses: float32/float64 CPU tensors of one dtype and shape, contiguous
    # and without a lazy negation; y is allocated here like x (so contiguous, same size).
    # Each tensor query costs microseconds inside a deep forward (the convolutions evict
    # the caches): no query is made twice.
    dtype, shape = shortcut.dtype, shortcut.shape
    if (
        (dtype is not torch.float32 and dtype is not torch.float64)
        or branch.dtype is not dtype or branch.shape != shape
        or not (shortcut.is_cpu and branch.is_cpu)
        or not (shortcut.is_contiguous() and branch.is_contiguous())
        or shortcut.is_neg() or branch.is_neg()
        or (torch.is_grad_enabled() and (shortcut.requires_grad or branch.requires_grad))
    ):
        return None  # (the last: the add must be recorded by autograd)
    outer, c, inner = _shape_layout(shape, channel_dim)
    if outer * c * inner == 0:
        return None
    y = torch.empty_like(shortcut)
    sums = _c_residual_add_sums_at(  # type: ignore[misc]
        shortcut.data_ptr(), branch.data_ptr(), y.data_ptr(), dtype is torch.float64,
        float(alpha), outer, c, inner, torch.get_num_threads())
    return y, outer * inner, c, sums


def residual_add_moments(
    shortcut: Tensor, branch: Tensor, alpha: float, channel_dim: int = 1
) -> tuple[Tensor, ChannelMoments, ChannelMoments]:
    """``y = shortcut + alpha * branch`` and the channel statistics of ``branch`` and ``y``.

    ``y`` equals ``torch.add(shortcut, branch, alpha=alpha)`` exactly. The C kernel takes
    float32/float64, contiguous CPU tensors of one shape and dtype when no autograd graph
    is to be recorded; anything else (accelerators, half precision, non-contiguous,
    broadcasting, a graph) goes through ``torch.add`` and :func:`channel_moments`.
    Statistics as in :func:`channel_moments` (the exact path takes over under the same
    conditions).

    Examples:
        >>> x, b = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
        >>> y, mb, my = residual_add_moments(x, b, 0.2)
        >>> torch.equal(y, torch.add(x, b, alpha=0.2))
        True
    """
    fused = fused_sums(shortcut, branch, alpha, channel_dim)
    if fused is None:
        y = torch.add(shortcut, branch, alpha=alpha)
        return y, channel_moments(branch, channel_dim), channel_moments(y, channel_dim)
    y, n, c, (sq_b, ss_b, sq_y, ss_y) = fused
    mb = _from_sums(n, c, sq_b, ss_b) or channel_moments(branch, channel_dim)
    my = _from_sums(n, c, sq_y, ss_y) or channel_moments(y, channel_dim)
    return y, mb, my
