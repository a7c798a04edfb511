"""PH ResNets: residual networks of parameterized hypercomplex (PH) convolutions, with and
without PHYDI (Mancanelli, Grassucci, Uncini & Comminiello, MLSP 2023, arXiv 2310.07612).

``ph_resnet1d`` is a 1-D pre-activation ResNet for signals such as MNIST-1D: a real stem
conv, ``depth`` basic blocks ``x + g * conv(phi(conv(phi(x))))`` with
:class:`~signalprop.nn.PHConv1d`, then phi, average pooling and a linear head. PHYDI makes
every block the identity at initialization with a learnable scalar g = 0 on its branch (a
:class:`~signalprop.nn.SkipInit`); without it there is no g and, with variance-correct He
PH convolutions and no normalization, the trunk's second moment doubles per block
(:func:`signalprop.theory.ph_resnet_schedule` predicts both).

NOTE: the PHYDI paper's PH-ResNets keep BatchNorm in their blocks; here the blocks have no
normalization, where the identity initialization is what keeps a deep network trainable
(the regime of De & Smith's SkipInit, which PHYDI's scalar is).

:func:`phm_convs_` turns the convolutions of an existing model into PH convolutions; it is
what ``signalprop.models.resnetv2(..., layer="phm", n=4)`` applies to its blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from signalprop import theory
from signalprop.models._registry import register_model
from signalprop.nn import BranchTap, PHConv1d, ResidualBlock, SkipInit, he_gain, to_ph_layer
from signalprop.nn.activations import make_activation
from signalprop.results import SPPResult

PH_INITS = ("fan_in", "xavier_factors")


class PHBasicBlock1d(ResidualBlock):
    """``x + g * conv2(phi(conv1(phi(x))))`` with PH convolutions ('same' padding).

    ``g`` is a :class:`SkipInit` scalar at 0 with ``phydi`` (the block is the identity at
    initialization) and absent otherwise. The branch output is tapped before ``g``.

    Examples:
        >>> block = PHBasicBlock1d(8, n=4, phydi=True)
        >>> x = torch.randn(2, 8, 10)
        >>> torch.equal(block(x), x)  # PHYDI: the identity at initialization
        True
    """

    def __init__(self, width: int, n: int = 4, kernel_size: int = 3, activation: str = "relu",
                 init: str = "fan_in", phydi: bool = True) -> None:
        super().__init__()
        gain = he_gain(activation)
        pad = kernel_size // 2
        self.act1 = make_activation(activation)
        self.conv1 = PHConv1d(width, width, kernel_size, n, padding=pad, init=init, gain=gain)
        self.act2 = make_activation(activation)
        self.conv2 = PHConv1d(width, width, kernel_size, n, padding=pad, init=init, gain=gain)
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(0.0) if phydi else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.act2(self.conv1(self.act1(x))))
        out = self.branch_tap(out)
        if self.skip_gain is not None:
            out = self.skip_gain(out)
        return self.residual_add(x, out)

    def adds_tapped_branch(self) -> bool:
        return self.skip_gain is None


class PHResNet1d(nn.Module):
    """A 1-D PH ResNet; build it with :func:`ph_resnet1d`.

    Layout: ``stem`` (real Conv1d) -> ``blocks.{b}`` -> ``final_act`` -> mean over
    positions -> ``fc``. Inputs (B, L) are read as one channel (B, 1, L).

    Examples:
        >>> m = ph_resnet1d(2, width=8)
        >>> m(torch.randn(3, 40)).shape, [name for name, _ in m.signal_blocks()]
        (torch.Size([3, 10]), ['stem', 'blocks.0', 'blocks.1'])
    """

    def __init__(self, depth: int, width: int, n: int, kernel_size: int, activation: str,
                 init: str, phydi: bool, in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.depth, self.width, self.n, self.kernel_size = depth, width, n, kernel_size
        self.activation, self.init, self.phydi = activation, init, phydi
        self.stem = nn.Conv1d(in_chans, width, kernel_size, padding=kernel_size // 2)
        self.blocks = nn.Sequential(*[
            PHBasicBlock1d(width, n, kernel_size, activation, init, phydi) for _ in range(depth)])
        self.final_act = make_activation(activation)
        self.fc = nn.Linear(width, num_classes)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """LeCun-normal stem and head (zero biases), PH convs by their ``init``, g = 0."""
        for m in (self.stem, self.fc):
            m.weight.normal_(0.0, 1.0 / math.sqrt(m.weight[0].numel()))
            m.bias.zero_()
        for block in self.blocks:
            for m in (block.conv1, block.conv2, block.skip_gain):
                if m is not None:
                    m.reset_parameters()

    def signal_blocks(self) -> list[tuple[str, nn.Module]]:
        """Where Signal Propagation Plots measure: the stem output, then every block."""
        return [("stem", self.stem)] + [(f"blocks.{b}", m) for b, m in enumerate(self.blocks)]

    def predicted_spp(self, input_var: float = 1.0, input_sq_mean: float = 0.0,
                      length: int | None = None, label: str | None = None) -> SPPResult:
        """The theory's SPP for this network (:func:`signalprop.theory.ph_resnet_schedule`).

        Examples:
            >>> m = ph_resnet1d(3, width=8, phydi=False)
            >>> [round(v + q, 1) for v, q in zip(m.predicted_spp().avg_var,
            ...                                  m.predicted_spp().avg_sq_mean)]
            [1.0, 2.0, 4.0, 8.0]
        """
        return theory.ph_resnet_schedule(
            self.depth, n=self.n, width=self.width, kernel_size=self.kernel_size,
            init=self.init, gain=he_gain(self.activation),
            branch_gain=0.0 if self.phydi else 1.0, activation=self.activation,
            input_var=input_var, input_sq_mean=input_sq_mean, length=length,
            label=label or f"{'PHYDI' if self.phydi else 'no PHYDI'} (predicted)")

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (B, L) -> (B, 1, L)
        h = self.final_act(self.blocks(self.stem(x)))  # (B, C, L)
        return self.fc(h.mean(dim=-1))


def ph_resnet1d(depth: int = 8, *, width: int = 32, n: int = 4, kernel_size: int = 3,
                activation: str = "relu", init: str = "fan_in", phydi: bool = True,
                in_chans: int = 1, num_classes: int = 10) -> PHResNet1d:
    """A 1-D ResNet of PH convolutions, with (``phydi=True``) or without PHYDI.

    Args:
        depth: residual blocks (two PH convs each).
        width: channels of the trunk (a multiple of ``n``).
        n: hypercomplex dimension of the PH convs.
        kernel_size: taps of every conv (odd; 'same' padding).
        activation: registered activation name (He gain of the PH convs follows it).
        init: PH initialization, ``"fan_in"`` (variance-correct, He) or
            ``"xavier_factors"`` (the reference code's).
        phydi: a learnable scalar at 0 on every branch (identity at initialization).
        in_chans: input channels (inputs (B, L) are one channel).
        num_classes: outputs of the linear head.

    Returns:
        A :class:`PHResNet1d`.

    Examples:
        >>> net = ph_resnet1d(4, width=16, phydi=True)
        >>> x = torch.randn(5, 40)
        >>> torch.allclose(net.blocks(net.stem(x.unsqueeze(1))), net.stem(x.unsqueeze(1)))
        True
    """
    for name, v in (("depth", depth), ("width", width), ("n", n), ("kernel_size", kernel_size),
                    ("in_chans", in_chans), ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if width % n:
        raise ValueError(f"width={width} is not divisible by n={n} (PH convolutions need it)")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd ('same' padding), got {kernel_size}")
    if init not in PH_INITS:
        raise ValueError(f"init={init!r} is not allowed; valid: {', '.join(PH_INITS)}")
    theory.get_activation(activation)  # unknown names list the valid ones
    return PHResNet1d(depth, width, n, kernel_size, activation, init, bool(phydi), in_chans,
                      num_classes)


def phm_convs_(model: nn.Module, n: int, *, gain: float, init: str = "fan_in",
               types: tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.Linear)) -> list[str]:
    """Replace, in place, every layer of ``types`` whose sizes allow it by its PH version.

    Fresh factors (``init``, ``gain``) are drawn; no weight is read, so this works on the
    meta device. Layers with sizes not divisible by ``n`` (or groups != 1) stay dense.

    Returns:
        The names of the layers kept dense.

    Examples:
        >>> net = nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3))
        >>> phm_convs_(net, 4, gain=1.0), type(net[2]).__name__
        (['0'], 'PHConv1d')
    """
    kept = []
    for name, m in list(model.named_modules()):
        if type(m) not in types:
            continue
        try:
            ph, _ = to_ph_layer(m, n, init=init, gain=gain)
        except ValueError:
            kept.append(name)
            continue
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, ph)
    return kept


register_model("ph_resnet1d", ph_resnet1d, "1-D PH ResNet (PHYDI by default) for MNIST-1D")
