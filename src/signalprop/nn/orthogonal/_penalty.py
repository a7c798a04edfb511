"""The orthogonality regularizer L_orth of a convolution kernel (Wang et al., CVPR 2020,
in the form analysed by Achour, Malgouyres & Mamalet, JMLR 2022, Definition 1).

For a kernel K (M x C x k^d) with stride S, let P = floor((k - 1) / S) S (the largest
multiple of S below k) and conv(K, K, padding P, stride S) the M x M x (2P/S + 1)^d tensor
of correlations between the output channels' kernels at the shifts that are multiples of
S. Then

    L_orth(K) = || conv(K, K, padding P, stride S) - I_r0 ||_F^2 - (M - C S^d)^+

with I_r0 the identity at the centre shift. It involves the kernel only (not the image),
is zero exactly when the layer is orthogonal with circular padding (rows orthonormal when
M <= C S^d, columns when M >= C S^d), and on inputs of size S N (S N >= 2k - 1) the
Frobenius orthogonality error is N^d L_orth (their Theorem 7): ||K K^T - Id||_F^2 in the
row case, ||K^T K - Id||_F^2 in the column case. The spectral error max |sigma^2 - 1| is
at most sqrt(alpha L_orth) with alpha independent of N (their Theorem 8).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.nn._kernel import effective_kernel
from signalprop.nn.orthogonal._layer import OrthoConv2d

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _dilate(w: Tensor, dilation: tuple[int, ...]) -> Tensor:
    """The kernel with dilation - 1 zeros between taps (same operator, dilation 1)."""
    if all(di == 1 for di in dilation):
        return w
    m, c, *k = w.shape
    out = w.new_zeros(m, c, *(di * (ki - 1) + 1 for ki, di in zip(k, dilation)))
    out[(slice(None), slice(None), *(slice(None, None, di) for di in dilation))] = w
    return out


def _kernel_and_geometry(conv: nn.Module | Tensor, stride: int | tuple[int, ...] | None,
                         dilation: int | tuple[int, ...] | None, groups: int | None
                         ) -> tuple[Tensor, tuple[int, ...], tuple[int, ...], int]:
    if isinstance(conv, Tensor):
        w = conv
        if w.dim() not in (3, 4, 5) or not w.is_floating_point():
            raise ValueError(f"a kernel must be a floating (M, C, *k) tensor with 1 to 3 "
                             f"spatial axes, got {w.dtype} of shape {tuple(w.shape)}")
        d = w.dim() - 2
        s, dil = ((v,) * d if isinstance(v, int) else tuple(v)
                  for v in (stride or 1, dilation or 1))
        g = groups or 1
    elif isinstance(conv, nn.modules.conv._ConvNd):
        if stride is not None or dilation is not None or groups is not None:
            raise ValueError("stride, dilation and groups come from the layer; pass them "
                             "only with a kernel tensor")
        w = effective_kernel(conv)
        s, dil, g = tuple(conv.stride), tuple(conv.dilation), conv.groups
        d = len(s)
    elif isinstance(conv, OrthoConv2d):
        raise ValueError("OrthoConv2d is orthogonal by construction (its L_orth is 0 and its "
                         "parameter 'weight' is not the kernel it applies); orth_penalty "
                         "regularizes ordinary convolutions")
    else:
        raise ValueError(f"orth_penalty takes a convolution layer (nn.Conv1d/2d/3d, a "
                         f"ConvTranspose or a subclass) or a kernel tensor, got "
                         f"{type(conv).__name__}")
    if len(s) != d or len(dil) != d or min(*s, *dil) < 1:
        raise ValueError(f"stride {s} and dilation {dil} must be positive, one per spatial "
                         f"axis ({d})")
    if not isinstance(g, int) or g < 1 or w.shape[0] % g:
        raise ValueError(f"groups={g} must divide the {w.shape[0]} output channels")
    return w, s, dil, g


def orth_penalty(conv: nn.Module | Tensor, *, stride: int | tuple[int, ...] | None = None,
                 dilation: int | tuple[int, ...] | None = None, groups: int | None = None
                 ) -> Tensor:
    """L_orth of a convolution: zero exactly when the layer is orthogonal (circular padding).

    Differentiable and cheap: one small convolution of the kernel with itself, whatever the
    image size. Row-orthogonal (M <= C S^d) and column-orthogonal (M >= C S^d) cases are
    both covered by Achour et al.'s Definition 1 (the column case subtracts (M - C S^d)).
    Grouped layers are penalized group by group (summed); dilated kernels as the kernel
    with zeros between the taps.

    Args:
        conv: a Conv1d/2d/3d (Scaled WS layers use their standardized weight, quantized
            layers Q(w) with their estimator's gradient; a ConvTranspose uses its weight
            as the kernel, orthogonal exactly when its transpose is), or a kernel tensor
            (M, C / groups, *k). The layer's padding is not read: L_orth describes the
            circular convolution by the kernel (with zero padding an orthogonal layer
            rarely exists, Achour et al. Propositions 5-6; the penalty still regularizes
            the kernel towards one).
        stride: only with a kernel tensor (default 1).
        dilation: only with a kernel tensor (default 1).
        groups: only with a kernel tensor (default 1).

    Returns:
        A scalar tensor (>= 0 up to rounding) with the kernel's dtype and graph.

    Raises:
        ValueError: not a convolution or a kernel, or geometry that does not fit it.

    Examples:
        >>> conv = nn.Conv2d(4, 4, 3, bias=False)
        >>> with torch.no_grad():  # a kernel whose only tap is an orthogonal matrix
        ...     _ = conv.weight.zero_()
        ...     conv.weight[:, :, 1, 1] = torch.linalg.qr(torch.randn(4, 4))[0]
        >>> orth_penalty(conv).item() < 1e-10
        True
        >>> round(orth_penalty(2 * conv.weight).item(), 4)  # every sigma 2: ||4 I - I||^2 = 36
        36.0

    References:
        Wang, Chen, Chakraborty & Yu, "Orthogonal convolutional neural networks", CVPR
        2020; Achour, Malgouyres & Mamalet, JMLR 2022 (Definition 1, Theorems 7-8).
    """
    w, s, dil, g = _kernel_and_geometry(conv, stride, dilation, groups)
    w = _dilate(w, dil)
    m, cg, *k = w.shape
    d = len(k)
    pad = [((ki - 1) // si) * si for ki, si in zip(k, s)]
    mg = m // g
    # batch item l holds, for each group, the kernel of that group's l-th output channel
    inp = w.reshape(g, mg, cg, *k).transpose(0, 1).reshape(mg, g * cg, *k)
    corr = _CONV[d](inp, w, stride=s, padding=pad, groups=g)  # (M/g, M, 2P/S + 1, ...)
    target = torch.zeros_like(corr)
    ms = torch.arange(m)
    target[(ms % mg, ms, *(p // si for p, si in zip(pad, s)))] = 1.0
    excess = max(0, m - g * cg * math.prod(s))
    return (corr - target).square().sum() - excess
