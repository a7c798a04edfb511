"""Per-example input patches of a convolution (im2col) for any ConvNd, in the layout the
gradient Gram kernels use.

For ``nn.Conv{1,2,3}d`` with any stride, padding (numbers, ``"same"``, ``"valid"``, any
``padding_mode``), dilation and groups, the weight gradient of example b is

    dL/dW[g*Og + o, k] = sum_t  gout[b, g*Og + o, t] * A[b, g, t, k]

where t runs over output positions and A[b, g, t, :] is the input patch of group g seen
by output position t, flattened like the weight's (in_channels / groups, *kernel) axes.
"""

from __future__ import annotations

import math

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def conv_patches(x: Tensor, conv: nn.modules.conv._ConvNd) -> Tensor:
    """``(B, groups, T, (C_in / groups) * prod(kernel))`` patches of input ``x`` (B, C_in, *S).

    Padding is applied first (as the module does: ``F.pad`` with the module's padding mode,
    or zeros), then windows of extent dilation*(k-1)+1 are taken with the module's stride
    and every dilation-th element kept. Only the final reshape copies.
    """
    d = x.dim() - 2
    pads = conv._reversed_padding_repeated_twice
    if any(pads):
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x = F.pad(x, pads, mode=mode)
    kernel, stride, dilation = conv.kernel_size, conv.stride, conv.dilation
    for i in range(d):
        x = x.unfold(2 + i, dilation[i] * (kernel[i] - 1) + 1, stride[i])
    # x: (B, C, *O, *window); keep every dilation-th element of each window axis
    if any(di > 1 for di in dilation):
        x = x[(Ellipsis, *(slice(None, None, di) for di in dilation))]
    b, c = x.shape[:2]
    out_sizes = x.shape[2 : 2 + d]
    g = conv.groups
    x = x.reshape(b, g, c // g, *out_sizes, *kernel)
    # (B, G, Cg, *O, *K) -> (B, G, *O, Cg, *K)
    perm = [0, 1, *range(3, 3 + d), 2, *range(3 + d, 3 + 2 * d)]
    x = x.permute(perm)
    return x.reshape(b, g, math.prod(out_sizes), (c // g) * math.prod(kernel))
