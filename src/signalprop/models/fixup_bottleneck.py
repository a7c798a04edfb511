"""Pre-activation bottleneck with Fixup's scalar biases and multiplier (no normalization).

    pre      = act(x + b1)
    branch   = conv3(act(conv2(act(conv1(pre + b2) + b3) + b4) + b5) + b6)
    out      = shortcut + s * branch,   shortcut = x, or proj(pre + b2) at transitions

Scalar biases b_k (init 0) sit before every convolution and activation, the scalar
multiplier s (a :class:`SkipInit` with init 1) after the branch's last convolution. The
convolutions have no bias. Weights are set by :func:`signalprop.nn.fixup_init_` from the
model's ``reset_parameters``: conv3 = 0, so the block is its shortcut at initialisation.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from signalprop.nn import BranchTap, ResidualBlock, ScalarBias, SkipInit
from signalprop.nn.activations import make_activation


class FixupBottleneck(ResidualBlock):
    """Fixup pre-activation bottleneck (Zhang, Dauphin & Ma, ICLR 2019), bottleneck = out/4.

    ``branch_convs()`` lists the branch's weight layers in order, for
    :func:`signalprop.nn.fixup_init_`.

    Examples:
        >>> import torch
        >>> blk = FixupBottleneck(16, 16, 1, "relu")
        >>> blk(torch.randn(2, 16, 4, 4)).shape
        torch.Size([2, 16, 4, 4])
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, activation: str) -> None:
        super().__init__()
        mid = out_ch // 4
        self.bias1, self.act1 = ScalarBias(), make_activation(activation)
        self.bias2 = ScalarBias()
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bias3, self.act2, self.bias4 = ScalarBias(), make_activation(activation), ScalarBias()
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bias5, self.act3, self.bias6 = ScalarBias(), make_activation(activation), ScalarBias()
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.is_transition = stride != 1 or in_ch != out_ch
        self.shortcut = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False) if self.is_transition else None
        )
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(1.0)  # Fixup's scalar multiplier

    def branch_convs(self) -> list[nn.Conv2d]:
        return [self.conv1, self.conv2, self.conv3]

    def forward(self, x: Tensor) -> Tensor:
        pre = self.bias2(self.act1(self.bias1(x)))
        shortcut = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(self.bias4(self.act2(self.bias3(out))))
        out = self.conv3(self.bias6(self.act3(self.bias5(out))))
        return shortcut + self.skip_gain(self.branch_tap(out))
