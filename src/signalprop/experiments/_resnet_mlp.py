"""A pre-activation residual MLP with the normalizations the normalizer-free claims compare.

The claims that train ResNets on CPU (normfree/) use MNIST-1D as flat 40-point signals
(Greydanus 2020): a 1-D convolutional ResNet reaches 0.99 test accuracy there, at its
ceiling, while residual MLPs stay near 0.7, where differences between methods can show;
and an MLP block costs a third of a 1-D convolution block (one CPU core: ~0.25 ms per
block and step at width 128, batch 64). Each block has two linear layers, as the basic
blocks of the Wide-ResNets De & Smith (2020) train:

* ``norm="bn"``: ``x + fc2(relu(BN(fc1(relu(BN(x))))))``, He init;
* ``norm="none"``: the same without BN, He init: Var(x) about doubles per block
  (PAPERS.md section 2), ~2^depth at the output;
* ``norm="skipinit"``: ``none`` with a learnable scalar initialized to 0 on every branch
  and a zero classifier (De & Smith 2020), so the network starts as its stem;
* ``norm="nf"``: ``x + alpha * g * f(x / beta)``, f = fc2 . relu . fc1 . relu with Scaled
  WS linear layers carrying relu's gamma, beta = sqrt(expected Var(x)) growing by alpha^2
  per block, and g the reference's SkipInit gain (initialized to 0) (Brock, De & Smith
  2021; DeepMind's ``nf_resnet.py``).

Regularizers of the NF-ResNets, available to every ``norm``: ``dropout`` on the features
before the classifier and stochastic depth ``drop_path`` (block i of n drops its branch
with probability ``drop_path * i / n``, the reference's linear schedule).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn
from torch import Tensor

from signalprop import theory
from signalprop.nn import BranchTap, DropPath, GammaAct, ResidualBlock, SkipInit, WSLinear

NORMS = ("bn", "none", "skipinit", "nf")


class MLPBlock(ResidualBlock):
    """Pre-activation two-layer residual block for ``bn`` / ``none`` / ``skipinit``."""

    def __init__(self, width: int, norm: str, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm1d(width) if norm == "bn" else nn.Identity()
        self.act1 = nn.ReLU()
        self.fc1 = nn.Linear(width, width)
        self.norm2 = nn.BatchNorm1d(width) if norm == "bn" else nn.Identity()
        self.act2 = nn.ReLU()
        self.fc2 = nn.Linear(width, width)
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(0.0) if norm == "skipinit" else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        out = self.fc1(self.act1(self.norm1(x)))
        out = self.branch_tap(self.fc2(self.act2(self.norm2(out))))
        if self.skip_gain is not None:
            out = self.skip_gain(out)
        return self.residual_add(x, self.drop_path(out))


class NFMLPBlock(ResidualBlock):
    """Normalizer-free two-layer residual block: ``x + alpha * g * f(x / beta)``."""

    def __init__(self, width: int, beta: float, alpha: float, drop_path: float = 0.0) -> None:
        super().__init__()
        self.beta, self.alpha = float(beta), float(alpha)
        gamma = theory.gamma("relu")
        self.act1 = nn.ReLU()
        # relu(x / beta) = relu(x) / beta: the 1 / beta goes into fc1's Scaled WS gain
        self.fc1 = WSLinear(width, width, gamma=gamma / self.beta)
        self.act2 = nn.ReLU()
        self.fc2 = WSLinear(width, width, gamma=gamma)
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(0.0)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch_tap(self.fc2(self.act2(self.fc1(self.act1(x)))))
        return self.residual_add(x, self.drop_path(self.skip_gain(out)), self.alpha)


def resnet_mlp(depth: int = 4, width: int = 128, norm: str = "bn", in_features: int = 40,
               num_classes: int = 10, alpha: float = 0.2, dropout: float = 0.0,
               drop_path: float = 0.0) -> nn.Sequential:
    """A pre-activation residual MLP: linear stem, ``depth`` two-layer residual blocks,
    [BN], ReLU, dropout, linear classifier (see the module docstring for ``norm``).

    Args:
        depth: residual blocks (2 * depth + 2 linear layers).
        width: width of the residual stream.
        norm: ``"bn"``, ``"none"``, ``"skipinit"`` or ``"nf"``.
        in_features: input size (40 for MNIST-1D).
        num_classes: outputs.
        alpha: NF residual scale.
        dropout: dropout rate before the classifier.
        drop_path: stochastic depth rate of the last block (block i of n: rate * i / n).

    Returns:
        ``nn.Sequential`` (stem, block0 ... block{depth-1}, norm, act, dropout, head).

    Examples:
        >>> net = resnet_mlp(3, 16, norm="nf", dropout=0.25, drop_path=0.1)
        >>> net(torch.randn(5, 40)).shape
        torch.Size([5, 10])
    """
    if int(depth) < 1 or int(width) < 1:
        raise ValueError(f"depth and width must be >= 1, got {depth!r}, {width!r}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    for name, rate in (("dropout", dropout), ("drop_path", drop_path)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
    depth, width, nf = int(depth), int(width), norm == "nf"
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        stem=WSLinear(in_features, width) if nf else nn.Linear(in_features, width))
    expected_var = 1.0
    for i in range(depth):
        rate = drop_path * i / depth
        if nf:
            layers[f"block{i}"] = NFMLPBlock(width, math.sqrt(expected_var), alpha, rate)
            expected_var += alpha**2
        else:
            layers[f"block{i}"] = MLPBlock(width, norm, rate)
    layers["norm"] = nn.BatchNorm1d(width) if norm == "bn" else nn.Identity()
    layers["act"] = GammaAct("relu") if nf else nn.ReLU()
    layers["dropout"] = nn.Dropout(dropout)
    layers["head"] = nn.Linear(width, num_classes)
    net = nn.Sequential(layers)
    _init(net, zero_head=norm == "skipinit")
    return net


@torch.no_grad()
def _init(net: nn.Module, zero_head: bool) -> None:
    """He-normal linear weights with zero biases; fan-in normal raw weights with unit gains
    and zero biases for Scaled WS layers; classifier N(0, 0.01) with zero bias (zero with
    ``zero_head``, as the SkipInit reference)."""
    for m in net.modules():
        if isinstance(m, WSLinear):
            nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.in_features))
            m.reset_ws_parameters()
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    head = net.head
    nn.init.normal_(head.weight, std=0.01)
    if zero_head:
        head.weight.zero_()
    head.bias.zero_()
