"""Model factories the reproductions train through the sweep runner.

Sweep configs name a model as ``package.module:factory`` with JSON keyword arguments, so
each variant a claim compares is a factory here: a Gaussian-initialized MLP at any
(sigma_w^2, sigma_b^2), a self-normalizing MLP with alpha dropout, and ReLU MLPs with or
without BatchNorm. They build on :func:`signalprop.models.mlp`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn as nn

from signalprop.models import mlp
from signalprop.models.mlp import MLP
from signalprop.nn.init import lecun_normal_

ZOO = "signalprop.experiments._models"  # the module path sweep configs use


def gaussian_mlp(depth: int, width: int, sigma_w2: float, sigma_b2: float = 0.0,
                 activation: str = "tanh", in_features: int | None = None,
                 num_classes: int = 10) -> MLP:
    """An MLP with every weight W ~ N(0, sigma_w^2 / fan_in) and bias b ~ N(0, sigma_b^2).

    The head is initialized the same way (Schoenholz et al. 2017 use one distribution for
    every layer). ``model.sigma_w2``/``sigma_b2`` are set, so ``predicted_spp`` works.

    Args:
        depth: hidden layers.
        width: hidden width.
        sigma_w2: weight variance times fan-in (> 0).
        sigma_b2: bias variance (>= 0).
        activation: registered activation name.
        in_features: input size (default: width).
        num_classes: outputs of the linear head.

    Returns:
        The :class:`~signalprop.models.MLP`.

    Examples:
        >>> net = gaussian_mlp(3, 512, sigma_w2=2.0, in_features=8)
        >>> round(net.fc1.weight.var().item() * 512, 1), net.sigma_w2
        (2.0, 2.0)
    """
    if not (sigma_w2 > 0 and math.isfinite(sigma_w2)):
        raise ValueError(f"sigma_w2 must be finite and > 0, got {sigma_w2!r}")
    if not (sigma_b2 >= 0 and math.isfinite(sigma_b2)):
        raise ValueError(f"sigma_b2 must be finite and >= 0, got {sigma_b2!r}")

    @torch.no_grad()
    def init(model: nn.Module) -> None:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, math.sqrt(sigma_w2 / m.in_features))
                if m.bias is not None:
                    m.bias.normal_(0.0, math.sqrt(sigma_b2)) if sigma_b2 > 0 else m.bias.zero_()

    net = mlp(depth, width, activation, init=init, in_features=in_features,
              out_features=num_classes, sigma_b2=sigma_b2)
    net.init, net.sigma_w2, net.sigma_b2 = "gaussian", float(sigma_w2), float(sigma_b2)
    return net


def flat_gaussian_mlp(**kwargs: object) -> nn.Sequential:
    """:func:`gaussian_mlp` after an ``nn.Flatten`` (for image datasets such as CIFAR-10).

    Examples:
        >>> net = flat_gaussian_mlp(depth=2, width=8, sigma_w2=1.0, in_features=12)
        >>> net(torch.randn(3, 3, 2, 2)).shape
        torch.Size([3, 10])
    """
    return nn.Sequential(nn.Flatten(), gaussian_mlp(**kwargs))  # type: ignore[arg-type]


def snn_mlp(depth: int, width: int, in_features: int, num_classes: int,
            dropout: float = 0.05, flatten: bool = False) -> nn.Sequential:
    """Self-normalizing MLP (Klambauer et al. 2017): Linear -> SELU -> AlphaDropout blocks,
    LeCun-normal weights, zero biases, a linear head.

    Args:
        depth: hidden layers.
        width: hidden width.
        in_features: input size.
        num_classes: outputs.
        dropout: alpha-dropout rate after every hidden SELU (0 for none).
        flatten: start with ``nn.Flatten`` (image inputs such as CIFAR-10).

    Returns:
        An ``nn.Sequential``.

    Examples:
        >>> net = snn_mlp(2, 16, in_features=4, num_classes=3, dropout=0.1)
        >>> [type(m).__name__ for m in net][:3]
        ['Linear', 'SELU', 'AlphaDropout']
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    fan_in = in_features
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.SELU()]
        if dropout > 0:
            layers.append(nn.AlphaDropout(dropout))
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    net = nn.Sequential(*layers)
    lecun_normal_(net)
    return net


@torch.no_grad()
def _he_init(net: nn.Sequential) -> nn.Sequential:
    """He-normal weights N(0, 2 / fan_in) and zero biases on every Linear of ``net``."""
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            m.bias.zero_()
    return net


def relu_mlp(depth: int, width: int, in_features: int, num_classes: int,
             batchnorm: bool = False, flatten: bool = False) -> nn.Sequential:
    """ReLU MLP with He-normal weights (N(0, 2 / fan_in)), zero biases, a linear head;
    with ``batchnorm`` each hidden block is Linear -> BatchNorm1d -> ReLU.

    Args:
        depth: hidden layers.
        width: hidden width.
        in_features: input size.
        num_classes: outputs.
        batchnorm: insert BatchNorm1d before every ReLU.
        flatten: start with ``nn.Flatten`` (image inputs such as CIFAR-10).

    Returns:
        An ``nn.Sequential``.

    Examples:
        >>> net = relu_mlp(2, 16, in_features=4, num_classes=3, batchnorm=True)
        >>> [type(m).__name__ for m in net][:3]
        ['Linear', 'BatchNorm1d', 'ReLU']
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if flatten:
        layers["flatten"] = nn.Flatten()
    fan_in = in_features
    for i in range(depth):
        layers[f"fc{i}"] = nn.Linear(fan_in, width)
        if batchnorm:
            layers[f"bn{i}"] = nn.BatchNorm1d(width)
        layers[f"act{i}"] = nn.ReLU()
        fan_in = width
    layers["head"] = nn.Linear(fan_in, num_classes)
    return _he_init(nn.Sequential(layers))


class GhostBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training-mode statistics come from consecutive chunks of ``ghost``
    examples ("ghost batch norm", Hoffer et al. 2017), so the normalization noise does not
    change with the batch size; eval mode uses the running statistics as usual (they are
    updated once per chunk).

    Examples:
        >>> bn = GhostBatchNorm1d(3, ghost=2)
        >>> x = torch.tensor([[0.0] * 3, [2.0] * 3, [10.0] * 3, [14.0] * 3])
        >>> bn(x)[:, 0].tolist()  # each pair normalized on its own
        [-0.99..., 0.99..., -0.99..., 0.99...]
    """

    def __init__(self, num_features: int, ghost: int = 64, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)  # type: ignore[arg-type]
        if int(ghost) < 2:
            raise ValueError(f"ghost must be >= 2 examples, got {ghost!r}")
        self.ghost = int(ghost)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.ghost:
            return super().forward(x)
        return torch.cat([super(GhostBatchNorm1d, self).forward(c) for c in x.split(self.ghost)])


class ResidualBlock(nn.Module):
    """Pre-activation residual MLP block: ``x + scale * Linear(ReLU([BN](x)))``."""

    def __init__(self, width: int, batchnorm: bool, scale: float,
                 ghost: int | None = None) -> None:
        super().__init__()
        if batchnorm and ghost is not None:
            self.norm: nn.Module = GhostBatchNorm1d(width, ghost)
        else:
            self.norm = nn.BatchNorm1d(width) if batchnorm else nn.Identity()
        self.act = nn.ReLU()
        self.fc = nn.Linear(width, width)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.fc(self.act(self.norm(x)))


def relu_resmlp(depth: int, width: int, in_features: int, num_classes: int,
                batchnorm: bool = False, ghost_batch: int | None = None,
                flatten: bool = False) -> nn.Sequential:
    """Residual ReLU MLP: a linear stem, ``depth`` pre-activation residual blocks
    ``x + Linear(ReLU([BN](x))) / sqrt(depth)``, then ReLU and a linear head; He-normal
    weights, zero biases.

    NOTE: the branch scale 1/sqrt(depth) keeps the unnormalized variance bounded
    (Var grows to about (1 + 1/depth)^depth <= e times the stem's) instead of doubling per
    block, so the skip-only network is trainable at the depths compared.

    Args:
        depth: residual blocks.
        width: width of the residual stream.
        in_features: input size.
        num_classes: outputs.
        batchnorm: BatchNorm1d at the start of every branch.
        ghost_batch: with ``batchnorm``, normalize training batches in chunks of this many
            examples (:class:`GhostBatchNorm1d`).
        flatten: start with ``nn.Flatten`` (image inputs such as CIFAR-10).

    Returns:
        An ``nn.Sequential`` (stem, blocks, act, head).

    Examples:
        >>> net = relu_resmlp(3, 16, in_features=4, num_classes=3)
        >>> net(torch.randn(5, 4)).shape
        torch.Size([5, 3])
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if flatten:
        layers["flatten"] = nn.Flatten()
    layers["stem"] = nn.Linear(in_features, width)
    for i in range(depth):
        layers[f"block{i}"] = ResidualBlock(width, batchnorm, 1.0 / math.sqrt(depth),
                                            ghost_batch)
    layers["act"] = nn.ReLU()
    layers["head"] = nn.Linear(width, num_classes)
    return _he_init(nn.Sequential(layers))


def autoencoder(in_features: int = 64, hidden: tuple[int, ...] = (32, 8, 32),
                activation: str = "tanh") -> nn.Sequential:
    """A fully connected autoencoder: Linear + activation per hidden size, a linear output
    of ``in_features``; PyTorch's default Linear init.

    Args:
        in_features: input (and output) size.
        hidden: hidden layer sizes (the middle one is the code).
        activation: "tanh", "relu" or "sigmoid".

    Returns:
        An ``nn.Sequential``.

    Examples:
        >>> net = autoencoder(6, (4, 2, 4))
        >>> net(torch.randn(3, 6)).shape
        torch.Size([3, 6])
    """
    acts = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    if activation not in acts:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(acts)}")
    layers: list[nn.Module] = []
    fan_in = in_features
    for h in hidden:
        layers += [nn.Linear(fan_in, h), acts[activation]()]
        fan_in = h
    layers.append(nn.Linear(fan_in, in_features))
    return nn.Sequential(*layers)
