"""Certified bounds on the extreme singular values of a convolution with any padding.

* sigma_max from above: the layer is conv_valid(pad(x)). The unpadded (valid) convolution
  on a padded input of length P is a row selection of the circular convolution on any
  length L >= P (embed the padded input in zeros), so ||conv_valid|| <= ||circular conv on
  L||, which the FFT gives exactly. Padding copies each input pixel into at most m places
  (zeros: m = 1, an isometric embedding), so ||pad|| = sqrt(prod over axes of m). The bound
  is ||circular conv on L|| * ||pad||.
* sigma_max from below and sigma_min from above: Lanczos on the smaller Gram matrix
  (A^T A or A A^T, products through conv and its input gradient): every Ritz value lies
  between the extreme eigenvalues, so the largest is a lower bound of sigma_max^2 and the
  smallest an upper bound of sigma_min^2.
* sigma_min from below: 0 (no cheap certificate exists for zero padding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from signalprop._fourier import frequency_matrices, polyphase_kernel
from signalprop.measure.spectra._conv_fft import largest
from signalprop.measure.spectra._conv_layer import ConvOperator, Products
from signalprop.measure.spectra._lanczos import lanczos


def pad_norm(op: ConvOperator) -> float:
    """||pad||: sqrt of the largest number of copies of one input pixel, per axis."""
    if op.mode == "zeros":
        return 1.0
    copies = 1
    for n, (left, right) in zip(op.in_shape[1:], op.pad):
        idx = torch.arange(n, dtype=torch.float64).reshape(1, 1, n)
        padded = F.pad(idx, (left, right), mode=op.mode).flatten().to(torch.long)
        copies *= int(torch.bincount(padded, minlength=n).max())
    return math.sqrt(copies)


def sigma_max_upper(op: ConvOperator) -> float:
    """||circular conv on the smallest stride multiple >= the padded size|| * ||pad||."""
    padded = [n + lr[0] + lr[1] for n, lr in zip(op.in_shape[1:], op.pad)]
    grid = tuple(-(-p // s) for p, s in zip(padded, op.stride))  # ceil(P / S)
    kernel = polyphase_kernel(op.weight, op.stride, op.dilation, (0,) * op.d, grid)
    mats, _ = frequency_matrices(kernel, op.groups)
    return largest(mats) * pad_norm(op)


def lanczos_extremes(op: ConvOperator, steps: int, seed: int) -> tuple[float, float, int]:
    """(lower bound of sigma_max, upper bound of sigma_min, steps run) from Lanczos."""
    prod = Products(op)
    if op.rows <= op.cols:  # A A^T on the output side: its eigenvalues are the sigma^2
        def matvec(u: torch.Tensor) -> torch.Tensor:
            return prod.forward(prod.adjoint(u))
        dim = op.rows
    else:
        def matvec(v: torch.Tensor) -> torch.Tensor:
            return prod.adjoint(prod.forward(v))
        dim = op.cols
    ritz = lanczos(matvec, 1, dim, steps, dtype=torch.float64, seed=seed)
    top, bottom = float(ritz.values[0, -1]), float(ritz.values[0, 0])
    return math.sqrt(max(top, 0.0)), math.sqrt(max(bottom, 0.0)), ritz.steps
