"""The encoders the identity claims train (referenced by sweep configs as
``signalprop.experiments.claims.identity._models:<factory>``)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

ZOO = "signalprop.experiments.claims.identity._models"
ENCODER_NORMS = ("bn", "gn_ws", "none")


class _Block(nn.Module):
    """Pre-activation basic block x + conv(relu(norm(conv(relu(norm(x)))))) on (B, C, L)."""

    def __init__(self, width: int, norm: bool) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm1d(width) if norm else nn.Identity()
        self.act1 = nn.ReLU()
        self.conv1 = nn.Conv1d(width, width, 3, padding=1)
        self.norm2 = nn.BatchNorm1d(width) if norm else nn.Identity()
        self.act2 = nn.ReLU()
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act2(self.norm2(self.conv1(self.act1(self.norm1(x))))))


class Encoder1d(nn.Sequential):
    """stem conv -> blocks -> norm -> ReLU -> mean over positions: (B, L) -> (B, width)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return super().forward(x).mean(dim=-1)


def resnet1d_encoder(depth: int = 3, width: int = 32, norm: str = "bn",
                     in_chans: int = 1) -> nn.Module:
    """A small 1-D pre-activation ResNet encoder for MNIST-1D with BatchNorm, with GroupNorm
    + Weight Standardization (``bn_to_gn_ws`` of the BatchNorm encoder) or without
    normalization; He-normal convolutions, zero biases.

    Examples:
        >>> enc = resnet1d_encoder(2, 8, "gn_ws")
        >>> enc(torch.randn(3, 40)).shape, type(enc[2].norm1).__name__
        (torch.Size([3, 8]), 'GroupNorm')
    """
    if norm not in ENCODER_NORMS:
        raise ValueError(f"norm={norm!r} is not allowed; valid: {', '.join(ENCODER_NORMS)}")
    has_norm = norm != "none"
    layers: list[nn.Module] = [nn.Conv1d(in_chans, width, 5, padding=2)]
    layers += [_Block(width, has_norm) for _ in range(depth)]
    layers += [nn.BatchNorm1d(width) if has_norm else nn.Identity(), nn.ReLU()]
    enc = Encoder1d(*layers)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, nn.Conv1d):
                gain = 1.0 if m is layers[0] else math.sqrt(2.0)
                m.weight.normal_(0.0, gain / math.sqrt(m.weight[0].numel()))
                m.bias.zero_()
    if norm == "gn_ws":
        from signalprop.convert import bn_to_gn_ws

        enc, _ = bn_to_gn_ws(enc, groups=8)
    return enc
