"""Small convolutional networks for depth compression: a MobileNetV2-style network of
inverted residual blocks, and a plain stack of conv-BN-activation layers.

MobileNetV2 (Sandler et al., CVPR 2018): each block expands C_in -> t C_in channels with
a 1x1 convolution, filters them with a 3x3 depthwise convolution, projects them back
with a linear 1x1 convolution (no activation after it: the "linear bottleneck") and,
where stride is 1 and C_in = C_out, adds the block input. The whole block without its two
activations is one 3x3 convolution C_in -> C_out (plus the identity), which is why depth
compression merges these blocks well (Kim et al., ICML 2023).

Signal propagation: BatchNorm after every convolution resets each channel to mean 0,
variance 1 (in train mode); ReLU6 halves the second moment, the shortcut adds the
input's variance to the branch's, so the variance grows along each stage of residual
blocks and resets at blocks without a shortcut.

``padding_mode`` is passed to every convolution: with "circular" every stride-1 merge of
these blocks is exact on the whole image (see :func:`signalprop.convert.merge_convs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from signalprop.models._registry import register_model

#: (expansion t, output channels, repeats, first stride) per stage, for 8x8 to 32x32 inputs.
SMALL_STAGES: tuple[tuple[int, int, int, int], ...] = ((1, 16, 1, 1), (4, 24, 2, 2),
                                                        (4, 32, 2, 2))
_ACTS = {"relu6": nn.ReLU6, "relu": nn.ReLU, "silu": nn.SiLU, "hardswish": nn.Hardswish}


def _act(name: str) -> nn.Module:
    if name not in _ACTS:
        raise ValueError(f"activation={name!r} is not allowed; valid: {', '.join(_ACTS)}")
    return _ACTS[name]()


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, *,
                activation: str = "relu6", padding_mode: str = "zeros") -> nn.Sequential:
    """``Conv(k, stride, padding k // 2, no bias) -> BatchNorm -> activation``.

    Examples:
        >>> [type(m).__name__ for m in conv_bn_act(3, 8, 3)]
        ['Conv2d', 'BatchNorm2d', 'ReLU6']
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False,
                  padding_mode=padding_mode),
        nn.BatchNorm2d(c_out), _act(activation))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise -> linear 1x1 project (+ input).

    Examples:
        >>> block = InvertedResidual(8, 8, stride=1, expansion=4)
        >>> block.use_residual, block(torch.randn(2, 8, 6, 6)).shape
        (True, torch.Size([2, 8, 6, 6]))
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, *,
                 activation: str = "relu6", padding_mode: str = "zeros") -> None:
        super().__init__()
        hidden = c_in * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_act(c_in, hidden, 1, activation=activation))
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, activation=activation,
                               padding_mode=padding_mode),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class ConvNet(nn.Module):
    """``features`` (a Sequential of convolutional blocks) -> global average pool ->
    ``classifier`` (Linear). Built by :func:`mobilenetv2` and :func:`plain_cnn`.

    Examples:
        >>> net = plain_cnn(depth=2, width=4, in_channels=1, num_classes=3)
        >>> net(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, features: nn.Sequential, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def mobilenetv2(stages: Sequence[Sequence[int]] = SMALL_STAGES, *, in_channels: int = 3,
                num_classes: int = 10, stem: int = 16, head: int = 64,
                activation: str = "relu6", padding_mode: str = "zeros") -> ConvNet:
    """A MobileNetV2-style network: 3x3 stem, inverted residual stages, 1x1 head.

    Args:
        stages: (expansion t, channels, repeats n, first stride s) per stage.
        in_channels: input channels.
        num_classes: outputs of the classifier.
        stem: channels of the stem convolution.
        head: channels of the last 1x1 convolution.
        activation: "relu6" (the paper's), "relu", "silu" or "hardswish".
        padding_mode: of every padded convolution ("zeros", "circular", ...).

    Returns:
        A :class:`ConvNet`; ``features[0]`` is the stem, ``features[-1]`` the head.

    Examples:
        >>> net = mobilenetv2(in_channels=1)
        >>> net(torch.randn(2, 1, 8, 8)).shape
        torch.Size([2, 10])
        >>> sum(isinstance(m, nn.Conv2d) for m in net.modules())
        16

    References:
        Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and
        Linear Bottlenecks", CVPR 2018 (arXiv 1801.04381).
    """
    kw = {"activation": activation, "padding_mode": padding_mode}
    layers: list[nn.Module] = [conv_bn_act(in_channels, stem, 3, **kw)]
    c = stem
    for t, c_out, n, s in stages:
        for i in range(n):
            layers.append(InvertedResidual(c, c_out, s if i == 0 else 1, t, **kw))
            c = c_out
    layers.append(conv_bn_act(c, head, 1, **kw))
    return ConvNet(nn.Sequential(*layers), head, num_classes)


def plain_cnn(depth: int = 6, width: int = 32, *, in_channels: int = 3, num_classes: int = 10,
              kernel: int = 3, activation: str = "relu",
              padding_mode: str = "zeros") -> ConvNet:
    """``depth`` layers ``Conv(k x k) -> BatchNorm -> activation`` at constant width.

    Examples:
        >>> net = plain_cnn(depth=3, width=8, in_channels=1)
        >>> len(net.features), net(torch.randn(2, 1, 8, 8)).shape
        (3, torch.Size([2, 10]))
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be >= 1, got depth={depth}, width={width}")
    layers = [conv_bn_act(in_channels if i == 0 else width, width, kernel,
                          activation=activation, padding_mode=padding_mode)
              for i in range(depth)]
    return ConvNet(nn.Sequential(*layers), width, num_classes)


register_model("mobilenetv2_small", mobilenetv2,
               "MobileNetV2-style network for small images, stages (t, c, n, s) "
               f"{SMALL_STAGES}")
register_model("plain_cnn", plain_cnn, "conv-BN-ReLU stack at constant width")
