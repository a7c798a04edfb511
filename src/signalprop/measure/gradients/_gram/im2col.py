"""Per-example input patches of a convolution (im2col) for any ConvNd, in the layout the
gradient Gram kernels use.

For ``nn.Conv{1,2,3}d`` with any stride, padding (numbers, ``"same"``, ``"valid"``, any
``padding_mode``), dilation and groups, the weight gradient of example b is

    dL/dW[g*Og + o, k] = sum_t  gout[b, g*Og + o, t] * A[b, g, k, t]

where t runs over output positions and A[b, g, :, t] is the input patch of group g seen
by output position t, flattened like the weight's (in_channels / groups, *kernel) axes.
"""

from __future__ import annotations

import math

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def conv_patches(x: Tensor, conv: nn.modules.conv._ConvNd) -> Tensor:
    """``(B, groups, (C_in / groups) * prod(kernel), T)`` patches of input ``x`` (B, C_in, *S).

    A 1x1 convolution with stride 1 needs no copy (a view of ``x``); 2-d convolutions use
    ``F.unfold``; other cases take windows of extent dilation*(k-1)+1 with the module's
    stride, keep every dilation-th element and copy once. Padding is applied as the module
    does (``F.pad`` with its padding mode, or zeros).
    """
    d = x.dim() - 2
    b, c = x.shape[:2]
    g = conv.groups
    kernel, stride, dilation = conv.kernel_size, conv.stride, conv.dilation
    pads = conv._reversed_padding_repeated_twice
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not any(pads):
        return x.reshape(b, g, c // g, -1)
    if d == 2 and conv.padding_mode == "zeros" and pads[0] == pads[1] and pads[2] == pads[3]:
        cols = F.unfold(x, kernel, dilation=dilation, padding=(pads[2], pads[0]), stride=stride)
        return cols.view(b, g, -1, cols.shape[-1])
    if any(pads):
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x = F.pad(x, pads, mode=mode)
    for i in range(d):
        x = x.unfold(2 + i, dilation[i] * (kernel[i] - 1) + 1, stride[i])
    # x: (B, C, *O, *window); keep every dilation-th element of each window axis
    if any(di > 1 for di in dilation):
        x = x[(Ellipsis, *(slice(None, None, di) for di in dilation))]
    out_sizes = x.shape[2 : 2 + d]
    x = x.reshape(b, g, c // g, *out_sizes, *kernel)
    # (B, G, Cg, *O, *K) -> (B, G, Cg, *K, *O)
    perm = [0, 1, 2, *range(3 + d, 3 + 2 * d), *range(3, 3 + d)]
    return x.permute(perm).reshape(b, g, (c // g) * math.prod(kernel), math.prod(out_sizes))
