"""Convolutions in the Fourier domain, shared by :mod:`signalprop.nn.orthogonal` (the
Cayley layer) and :mod:`signalprop.measure` (exact spectra).

Sedghi, Gupta & Long (ICLR 2019): an unstrided circular convolution from C to M channels
on inputs of size N^d is block-diagonalized by the d-dimensional DFT: at each of the N^d
frequencies it multiplies the input's DFT by the M x C matrix of the kernel's DFT
coefficients.

Strides reduce to that case exactly (polyphase, or space-to-depth): with stride S, input
sample S j + t (tap offset t = dilation * a - left padding) is written S (j + q) + r with
r in [0, S), so the layer is an unstrided circular convolution from C S^d channels (one per
input channel and phase r) on the N = n / S grid, with tap q. Taps that wrap around the
grid fold onto each other (added), so any kernel size, dilation and padding offset works.

Real kernels give conjugate matrices at opposite frequencies: only the half spectrum of
``rfftn`` is kept, each last-axis column counted twice unless it is its own mirror image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def polyphase_kernel(weight: Tensor, stride: tuple[int, ...], dilation: tuple[int, ...],
                     offset: tuple[int, ...], grid: tuple[int, ...]) -> Tensor:
    """The unstrided circular kernel on ``grid`` equivalent to a strided one.

    Args:
        weight: (M, Cg, *k) kernel.
        stride, dilation: per axis.
        offset: per axis, the input position read by tap 0 of output 0 (minus the left
            padding: -left).
        grid: per axis N, the output (and polyphase) size; the input is N * stride.

    Returns:
        (M, Cg * prod(stride), *grid) kernel; channel c * prod(stride) + (phase index, in
        C order over the axes) reads input channel c at that phase.
    """
    m, cg, *k = weight.shape
    d = len(k)
    rs, qs = [], []
    for j in range(d):
        t = torch.arange(k[j], device=weight.device) * dilation[j] + offset[j]
        r = torch.remainder(t, stride[j])
        rs.append(r)
        qs.append(torch.remainder(torch.div(t - r, stride[j], rounding_mode="floor"), grid[j]))
    # broadcast per-axis tap indices over the whole tap grid
    shape = [1] * d
    idx = []
    for group in (rs, qs):
        for j, v in enumerate(group):
            view = list(shape)
            view[j] = k[j]
            idx.append(v.reshape(view).expand(*k))
    out = torch.zeros((*stride, *grid, m, cg), dtype=weight.dtype, device=weight.device)
    out.index_put_(tuple(idx), weight.permute(*range(2, 2 + d), 0, 1), accumulate=True)
    # (S..., N..., M, Cg) -> (M, Cg, S..., N...) -> (M, Cg * prod S, N...)
    perm = (2 * d, 2 * d + 1, *range(d), *range(d, 2 * d))
    return out.permute(*perm).reshape(m, cg * math.prod(stride), *grid)


def frequency_matrices(kernel: Tensor, groups: int) -> tuple[Tensor, Tensor]:
    """Half-spectrum DFT matrices of an unstrided circular kernel, per group.

    Args:
        kernel: (M, Cg', *N) kernel on the grid (from :func:`polyphase_kernel`).
        groups: channel groups (output channels are grouped in order).

    Returns:
        ``(mats, weight)``: (G, F, M / G, Cg') complex matrices at the F half-spectrum
        frequencies, and (F,) multiplicities (1 or 2) that rebuild the full spectrum.
    """
    m, cgp, *grid = kernel.shape
    d = len(grid)
    spec = torch.fft.rfftn(kernel, dim=tuple(range(2, 2 + d)))  # (M, Cg', N.., N_d//2+1)
    mats = spec.reshape(groups, m // groups, cgp, -1).permute(0, 3, 1, 2)
    last = grid[-1]
    col = torch.full((last // 2 + 1,), 2.0, dtype=torch.float64, device=kernel.device)
    col[0] = 1.0
    if last % 2 == 0:
        col[-1] = 1.0
    weight = col.repeat(math.prod(grid[:-1]))
    return mats, weight
