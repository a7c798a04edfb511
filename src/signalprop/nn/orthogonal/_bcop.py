"""Orthogonal convolutions as products of block convolutions (BCOP: Xiao et al. 2018,
Li et al. 2019; the construction orthogonium's AOC builds on), for
:class:`~signalprop.nn.OrthoConv2d` with ``construction="bcop"``.

A circular convolution is orthogonal iff its symbol (the kernel's DFT, one c x c matrix
per frequency) is unitary at every frequency, and the symbol of a composition is the
product of the symbols. Three kinds of factors have unitary symbols:

* a 1 x 1 kernel H with H orthogonal;
* the 1 x 2 kernel [P, I - P] with P = U U^T an orthogonal projector (U: c x r,
  orthonormal columns): its symbol P + (I - P) e^{i w} is unitary since P (I - P) = 0;
* the 2 x 1 kernel [P; I - P], the same along the other axis.

Composing H with k_h - 1 vertical and k_w - 1 horizontal blocks gives a k_h x k_w kernel
whose convolution is exactly orthogonal (to rounding) on every input size. Rectangular
layers take c = max(M, C') channels and keep M rows and C' columns of the square kernel
(a subset of the rows or columns of a unitary matrix is orthonormal). Strided layers
first move each S x S block of pixels into channels (space-to-depth, C' = C S^2), which is
itself orthogonal, then apply a kernel that covers the polyphase taps the k x k stride-S
window reads: a 3 x 3 stride-2 layer becomes a 2 x 2 kernel on the half-size grid (its
footprint on the input is 4 x 4).

The parameters are unconstrained matrices; H and the U's are the Q factors of their QR
decompositions (signs fixed so that R has a positive diagonal: Q is unique and smooth). The
kernel is composed once per call from c x c matrices (c^3 multiply-adds per tap of each
intermediate kernel: 21 c^3 for 3 x 3; independent of the batch and of the image size)
and applied as one ``conv2d``: the layer costs one convolution of c channels plus that
composition.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def orthonormal_columns(z: Tensor) -> Tensor:
    """Q of z = QR with diag(R) >= 0: orthonormal columns spanning z's column space,
    differentiable (for full-rank z).

    Examples:
        >>> q = orthonormal_columns(torch.randn(2, 5, 3, dtype=torch.float64))
        >>> bool(torch.allclose(q.mT @ q, torch.eye(3, dtype=torch.float64).expand(2, 3, 3)))
        True
    """
    q, r = torch.linalg.qr(z)
    sign = torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(q.dtype)
    return q * sign.unsqueeze(-2)


def _block(k: Tensor, u: Tensor, axis: int) -> Tensor:
    """Compose kernel k (G, kh, kw, c, c) with the 2-tap block [P, I - P] along ``axis``
    (1: height, 2: width), P = U U^T: new[t] = k[t - 1] + P (k[t] - k[t - 1])."""
    pad = [0, 0] * 5
    pad[2 * (4 - axis)] = pad[2 * (4 - axis) + 1] = 1  # F.pad lists the last axis first
    kp = F.pad(k, pad[: 2 * (5 - axis)])
    lo, hi = kp.narrow(axis, 0, kp.shape[axis] - 1), kp.narrow(axis, 1, kp.shape[axis] - 1)
    ug = u[:, None, None]  # (G, 1, 1, c, r)
    return lo + ug @ (ug.mT @ (hi - lo))


def compose_kernel(ortho: Tensor, rows: Tensor | None, cols: Tensor | None,
                   taps: tuple[int, int], centre: tuple[int, int] | None = None) -> Tensor:
    """The (G, kh, kw, c, c) kernel H * B_1 * ... of orthogonal block convolutions.

    Args:
        ortho: (G, c, c) parameter of H.
        rows: (G, kh - 1, c, r) parameters of the vertical blocks' U (None: no parameter,
            kh = 1 or c = 1, r = 0).
        cols: (G, kw - 1, c, r) parameters of the horizontal blocks' U (None likewise).
        taps: (kh, kw).
        centre: per axis, the tap a kernel without projector parameters (c = 1, r = 0)
            puts its one non-zero entry at (default: the middle, (taps - 1) // 2): its
            first ``centre`` blocks are shifts (P = 0), the others identities (P = I).

    Returns:
        Taps k[g, i, j] (c x c, output x input) of a cross-correlation kernel whose
        circular convolution is orthogonal.

    Examples:
        >>> k = compose_kernel(torch.randn(1, 4, 4), torch.randn(1, 2, 4, 2),
        ...                    torch.randn(1, 2, 4, 2), (3, 3))
        >>> tuple(k.shape)
        (1, 3, 3, 4, 4)
    """
    k = orthonormal_columns(ortho)[:, None, None]
    us_h = None if rows is None else orthonormal_columns(rows)
    us_w = None if cols is None else orthonormal_columns(cols)
    centre = tuple((t - 1) // 2 for t in taps) if centre is None else centre
    for i in range(max(taps) - 1):  # alternate the axes
        for axis, us in ((1, us_h), (2, us_w)):
            if i >= taps[axis - 1] - 1:
                continue
            if us is not None:
                k = _block(k, us[:, i], axis)
            else:  # P = 0 (a shift: a zero tap in front) or P = I (a zero tap behind)
                pad = (1, 0) if i < centre[axis - 1] else (0, 1)
                k = F.pad(k, (0,) * (2 * (4 - axis)) + pad)
    return k


def footprint(kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(first offset, taps) of the kernel on the space-to-depth grid: the blocks that the
    k-tap, stride-S window of the 'same' layer reads (left padding d (k - 1) // 2)."""
    pad = dilation * (kernel - 1) // 2
    lo = math.floor(-pad / stride)
    hi = math.floor((dilation * (kernel - 1) - pad) / stride)
    return lo, hi - lo + 1


def circular_pad(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    """Circular padding (left, right, top, bottom) of the last two axes, for any pad (the
    input wraps as many times as needed; F.pad refuses pads larger than the input)."""
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    if max(left, right) <= w and max(top, bottom) <= h:
        return F.pad(x, pads, mode="circular") if any(pads) else x
    rows = torch.arange(-top, h + bottom, device=x.device) % h
    cols = torch.arange(-left, w + right, device=x.device) % w
    return x.index_select(-2, rows).index_select(-1, cols)
