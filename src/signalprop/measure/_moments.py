"""Per-channel first and second moments of a tensor, streamed without keeping it.

Fast path (float32/float64 contiguous tensors on the CPU): partial sums of x and x^2 over
each (outer, channel) row are formed in the tensor's precision, with reductions that
allocate nothing tensor-sized, and accumulated in float64. Its relative error on a channel
variance is about 1e-7 * (1 + mean^2 / var). Whenever that bound could exceed 1e-5
(mean^2 / var > 100), a value is non-finite, or the tensor is half precision,
non-contiguous or on an accelerator, the exact path runs instead: bounded chunks upcast to
float64, shifted by a per-channel reference so that large means cost no precision, and
combined exactly. Either way no more than a small chunk is ever copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Largest mean^2/var for which the fast path's float32 partial sums stay within ~1e-5.
_FAST_RATIO_LIMIT = 100.0
# Elements per float64 chunk on the exact path (8 MiB).
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ChannelMoments:
    """Channel-averaged statistics of one tensor.

    Attributes:
        avg_sq_mean: mean over channels of (channel mean)^2.
        avg_var: mean over channels of the biased channel variance.
        nonfinite: number of NaN/Inf elements.
        max_ratio: largest channel mean^2 / var (how hard the variance was to compute).
    """

    avg_sq_mean: float
    avg_var: float
    nonfinite: int
    max_ratio: float


def _layout(t: Tensor, channel_dim: int) -> tuple[int, int, int]:
    """(outer, channels, inner) sizes of ``t`` around ``channel_dim``."""
    if t.dim() == 0:
        return 1, 1, 1
    if t.dim() == 1:
        return 1, 1, t.numel()
    d = channel_dim % t.dim()
    outer = math.prod(t.shape[:d])
    inner = math.prod(t.shape[d + 1 :])
    return outer, t.shape[d], inner


def _finish(count: int, s: np.ndarray, ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = s / count
    var = ss / count
    var -= mean * mean
    np.maximum(var, 0.0, out=var)
    return mean, var


@dataclass(frozen=True)
class PartialMoments:
    """Per-channel partial sums of one tensor: cheap to take in a hook, finished later.

    Two torch reductions read the tensor once each and leave small tensors: for long rows
    ``sums`` / ``norms`` are the (outer, C) row sums and row L2 norms; for short rows the
    (C * inner,) column sums and column sums of squares. :meth:`finish` combines them in
    float64 NumPy.
    """

    count: int  # elements per channel
    channels: int
    inner: int
    rows: bool
    sums: Tensor
    squares: Tensor  # row norms (rows=True) or column sums of squares

    def finish(self) -> ChannelMoments | None:
        """The channel statistics, or None when the fast path's precision bound fails
        (mean^2 / var above 100 in some channel, or non-finite sums): then the tensor
        must be measured with the exact path."""
        c, inner = self.channels, self.inner
        with np.errstate(all="ignore"):  # non-finite sums are detected, not warned about
            if self.rows:
                s = self.sums.numpy().sum(axis=0, dtype=np.float64)
                ss = np.square(self.squares.numpy(), dtype=np.float64).sum(axis=0)
            else:
                # (c, inner) @ ones: numpy's sum over a short last axis is ~10x slower.
                ones = np.ones(inner)
                s = self.sums.numpy().reshape(c, inner) @ ones
                ss = self.squares.numpy().reshape(c, inner) @ ones
            if not math.isfinite(float(ss.sum())):
                return None
            mean, var = _finish(self.count, s, ss)
            sq = mean * mean
            ratio = float((sq / np.maximum(var, 1e-300)).max())
        if ratio > _FAST_RATIO_LIMIT:
            return None
        return ChannelMoments(float(sq.sum()) / c, float(var.sum()) / c, 0, ratio)


def partial_moments(t: Tensor, channel_dim: int = 1) -> PartialMoments | None:
    """Take the fast path's partial sums of ``t``, or None where it does not apply
    (accelerators, half precision, non-contiguous or empty tensors)."""
    if not (
        t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
        and t.is_contiguous()
    ):
        return None
    t = t.detach()
    outer, c, inner = _layout(t, channel_dim)
    if outer * inner == 0 or c == 0:
        return None
    if inner >= 32:
        # Long contiguous rows: reduce each (outer, channel) row; nothing is allocated.
        rows = t.view(outer, c, inner)
        return PartialMoments(outer * inner, c, inner, True, rows.sum(dim=2),
                              torch.linalg.vector_norm(rows, dim=2))
    # Short rows (small maps, channels-last): column sums over chunks of outer rows; the
    # squares' temporary is bounded by the chunk (<= 1 MiB).
    cols = t.view(outer, c * inner)
    step = max(1, (1 << 18) // (c * inner))
    if step >= outer:
        s, ss = cols.sum(dim=0), (cols * cols).sum(dim=0)
    else:
        s = torch.zeros(c * inner, dtype=torch.float64)
        ss = torch.zeros(c * inner, dtype=torch.float64)
        for start in range(0, outer, step):
            part = cols[start : start + step]
            s += part.sum(dim=0)
            ss += (part * part).sum(dim=0)
    return PartialMoments(outer * inner, c, inner, False, s, ss)


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
        partial = partial_moments(t, channel_dim)
        if partial is not None:
            fast = partial.finish()
            if fast is not None:
                return fast
    t = t.detach()
    outer, c, inner = _layout(t, channel_dim)
    if outer * inner == 0 or c == 0:
        return ChannelMoments(math.nan, math.nan, 0, math.nan)
    sub = subtract.detach() if subtract is not None else None
    with np.errstate(all="ignore"):
        mean, var, nonfinite = _exact(t, outer, c, inner, sub)
        sq = mean * mean
        ratio = float((sq / np.maximum(var, 1e-300)).max()) if nonfinite == 0 else math.nan
    return ChannelMoments(float(sq.sum()) / c, float(var.sum()) / c, nonfinite, ratio)
