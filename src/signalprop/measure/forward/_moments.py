"""Per-channel first and second moments of a tensor, streamed without keeping it.

Fast path (float32/float64 contiguous tensors on the CPU): one read of the tensor gives
the per-channel sums S_c and the total sum of squares; the channel-averaged squared mean
is mean_c (S_c / n)^2 and the channel-averaged variance sum(x^2) / (n C) minus it. The
read is done by the optional C accelerator :mod:`signalprop.measure.forward._cmoments` (built at
install; OpenMP threads shared with torch) or, where it is missing, by torch reductions
(row sums and row norms). Partial sums are float runs folded into float64, so the
relative error of the average variance is about 1e-7 * (1 + avg_sq_mean / avg_var).
Whenever that bound could exceed 1e-5 (ratio above 100), a value is non-finite, or the
tensor is half precision, non-contiguous or on an accelerator, the exact path runs
instead: bounded chunks upcast to float64, shifted by a per-channel reference so that
large means cost no precision, and combined exactly. Either way no more than a small
chunk is ever copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

try:  # built from _cmoments.c at install; optional (no compiler: torch reductions)
    from signalprop.measure.forward._cmoments import channel_sums as _c_channel_sums
except ImportError:  # pragma: no cover - depends on the build
    _c_channel_sums = None

# Largest mean^2/var for which the fast path's float32 partial sums stay within ~1e-5.
_FAST_RATIO_LIMIT = 100.0
# dtypes of the fast path (the C kernels take float32 and float64).
_FAST_DTYPES = (torch.float32, torch.float64)
# Elements per float64 chunk on the exact path (8 MiB).
_CHUNK = 1 << 20


def c_kernel_available() -> bool:
    """Whether the one-pass C kernel was built (otherwise torch reductions are used).

    Examples:
        >>> isinstance(c_kernel_available(), bool)
        True
    """
    return _c_channel_sums is not None


@dataclass(frozen=True)
class ChannelMoments:
    """Channel-averaged statistics of one tensor.

    Attributes:
        avg_sq_mean: mean over channels of (channel mean)^2.
        avg_var: mean over channels of the biased channel variance.
        nonfinite: number of NaN/Inf elements.
        ratio: avg_sq_mean / avg_var, which bounds how much precision the variance
            loses to cancellation (the fast path hands over to the exact one above 100).

    Examples:
        >>> channel_moments(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))  # (N, C): 2 channels
        ChannelMoments(avg_sq_mean=1.0, avg_var=0.5, nonfinite=0, ratio=2.0)
    """

    avg_sq_mean: float
    avg_var: float
    nonfinite: int
    ratio: float


def _layout(t: Tensor, channel_dim: int) -> tuple[int, int, int]:
    """(outer, channels, inner) sizes of ``t`` around ``channel_dim``."""
    return _shape_layout(t.shape, channel_dim)


def _shape_layout(shape: torch.Size, channel_dim: int) -> tuple[int, int, int]:
    """:func:`_layout` from a shape."""
    nd = len(shape)
    if nd < 2:
        return (1, 1, shape[0]) if nd else (1, 1, 1)
    d = channel_dim % nd
    outer = shape[0] if d == 1 else math.prod(shape[:d])
    return outer, shape[d], math.prod(shape[d + 1 :])


def _finish(count: int, s: np.ndarray, ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = s / count
    var = ss / count
    var -= mean * mean
    np.maximum(var, 0.0, out=var)
    return mean, var


def _averages(count: int, c: int, sum_sq_channel_sums: float, sum_squares: float
              ) -> tuple[float, float] | None:
    """``(avg_sq_mean, avg_var)`` from sum_c S_c^2 and sum x^2 (``count`` elements per
    channel, ``c`` channels), or None when they are non-finite or the cancellation bound
    fails (avg_sq_mean / avg_var above 100: the exact path must run)."""
    if not (math.isfinite(sum_squares) and math.isfinite(sum_sq_channel_sums)):
        return None
    avg_sq = sum_sq_channel_sums / (count * count * c)
    avg_var = sum_squares / (count * c) - avg_sq
    if avg_var < 0.0:
        avg_var = 0.0
    if avg_sq > _FAST_RATIO_LIMIT * avg_var:  # also avg_var == 0 < avg_sq
        return None
    return avg_sq, avg_var


def _from_sums(count: int, c: int, sum_sq_channel_sums: float, sum_squares: float
               ) -> ChannelMoments | None:
    """:func:`_averages` as :class:`ChannelMoments` (with the ratio), or None."""
    avg = _averages(count, c, sum_sq_channel_sums, sum_squares)
    if avg is None:
        return None
    avg_sq, avg_var = avg
    ratio = avg_sq / avg_var if avg_var > 0 else 0.0  # avg_var == 0 only with avg_sq == 0
    return ChannelMoments(avg_sq, avg_var, 0, ratio)


def _torch_sums(t: Tensor, outer: int, c: int, inner: int) -> tuple[float, float]:
    """(sum_c S_c^2, sum x^2) from torch reductions that allocate nothing tensor-sized;
    the fallback when the C accelerator is not built."""
    if inner >= 32:
        # Long contiguous rows: row sums and row norms, combined in float64.
        rows = t.view(outer, c, inner)
        s = rows.sum(dim=2).numpy().sum(axis=0, dtype=np.float64)
        norms = torch.linalg.vector_norm(rows, dim=2).numpy()
        ss = float(np.square(norms, dtype=np.float64).sum())
    else:
        # Short rows (small maps, channels-last): column sums over chunks of outer rows;
        # the squares' temporary is bounded by the chunk (<= 1 MiB).
        cols = t.view(outer, c * inner)
        step = max(1, (1 << 18) // (c * inner))
        col_s = np.zeros(c * inner)
        ss = 0.0
        for start in range(0, outer, step):
            part = cols[start : start + step]
            col_s += part.sum(dim=0).numpy()
            ss += float((part * part).sum(dim=0).numpy().sum(dtype=np.float64))
        # (c, inner) @ ones: numpy's sum over a short last axis is ~10x slower.
        s = col_s.reshape(c, inner) @ np.ones(inner)
    return float(s @ s), ss


def _fast_layout(t: Tensor) -> bool:
    """Whether the one-pass kernels can read ``t`` in place: a float32/float64, contiguous
    CPU tensor (without a lazy negation, which a NumPy view of its memory would miss)."""
    return t.dtype in _FAST_DTYPES and t.is_cpu and t.is_contiguous() and not t.is_neg()


def _fast(t: Tensor, channel_dim: int) -> ChannelMoments | None:
    """The fast path's statistics, or None where it does not apply (accelerators, half
    precision, non-contiguous or empty tensors) or its precision bound fails."""
    if not _fast_layout(t):
        return None
    outer, c, inner = _layout(t, channel_dim)
    if outer * inner == 0 or c == 0:
        return None
    if _c_channel_sums is not None:
        # the kernel checks the buffer's dtype, contiguity and length against the sizes
        sq, ss = _c_channel_sums(t.detach().numpy(), outer, c, inner, torch.get_num_threads())
    else:
        with np.errstate(all="ignore"):  # non-finite sums are detected, not warned about
            sq, ss = _torch_sums(t.detach(), outer, c, inner)
    return _from_sums(outer * inner, c, sq, ss)


def _exact(
    x: Tensor, outer: int, c: int, inner: int, subtract: Tensor | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel mean and variance in float64 over bounded chunks; exact NaN/Inf count."""
    xs = x.reshape(outer, c, inner)  # a view whenever x is contiguous
    ys = subtract.reshape(outer, c, inner) if subtract is not None else None
    rows_per_chunk = max(1, _CHUNK // max(1, c * inner))
    s = torch.zeros(c, dtype=torch.float64, device=x.device)
    ss = torch.zeros(c, dtype=torch.float64, device=x.device)
    shift: Tensor | None = None
    nonfinite = 0
    for start in range(0, outer, rows_per_chunk):
        # copy=True: a float64 input must never be shifted in place (it is the model's).
        chunk = xs[start : start + rows_per_chunk].to(torch.float64, copy=True)
        if ys is not None:
            chunk -= ys[start : start + rows_per_chunk].to(torch.float64)
        finite = torch.isfinite(chunk)
        nonfinite += int(chunk.numel() - finite.sum())
        if shift is None:
            # Shift by the first chunk's channel means: Var(x) = Var(x - k), no cancellation.
            shift = torch.where(finite, chunk, 0.0).mean(dim=(0, 2)).view(1, c, 1)
        chunk -= shift
        s += chunk.sum(dim=(0, 2))
        ss += chunk.square_().sum(dim=(0, 2))
    assert shift is not None
    mean, var = _finish(outer * inner, s.cpu().numpy(), ss.cpu().numpy())
    return mean + shift.view(c).cpu().numpy(), var, nonfinite


def channel_moments(
    t: Tensor, channel_dim: int = 1, subtract: Tensor | None = None
) -> ChannelMoments:
    """Channel-averaged squared mean and variance of ``t`` (or of ``t - subtract``).

    Statistics are per channel over every other axis (N, H, W for NCHW), then averaged
    over channels. Nothing tensor-sized is kept or copied.

    Args:
        t: activation tensor; ``channel_dim`` indexes its channels (1 for NCHW, -1 for
            (N, T, C)). 0-d and 1-d tensors count as one channel.
        subtract: optional tensor of ``t``'s shape; statistics of ``t - subtract`` are
            computed chunk by chunk (used for Var(y - x) of a foreign residual block).

    Examples:
        >>> m = channel_moments(torch.full((4, 3, 2, 2), 2.0))
        >>> (m.avg_sq_mean, m.avg_var, m.nonfinite)
        (4.0, 0.0, 0)
    """
    if subtract is not None and subtract.shape != t.shape:
        raise ValueError(f"subtract has shape {tuple(subtract.shape)}, expected {tuple(t.shape)}")
    if subtract is None:
        fast = _fast(t, channel_dim)
        if fast is not None:
            return fast
    t = t.detach()
    outer, c, inner = _layout(t, channel_dim)
    if outer * inner == 0 or c == 0:
        return ChannelMoments(math.nan, math.nan, 0, math.nan)
    sub = subtract.detach() if subtract is not None else None
    with np.errstate(all="ignore"):
        mean, var, nonfinite = _exact(t, outer, c, inner, sub)
        avg_sq, avg_var = float((mean * mean).sum()) / c, float(var.sum()) / c
    if nonfinite:
        ratio = math.nan
    else:
        ratio = avg_sq / avg_var if avg_var > 0 else (math.inf if avg_sq > 0 else 0.0)
    return ChannelMoments(avg_sq, avg_var, nonfinite, ratio)
