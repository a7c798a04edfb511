"""The two bottleneck blocks of ResNetV2: pre-activation (BatchNorm, none, SkipInit, GN+WS)
and normalizer-free (Scaled WS, Brock et al. 2021). Fixup's block is in fixup_bottleneck.py."""

from __future__ import annotations

import functools

import torch.nn as nn
from torch import Tensor

from signalprop import theory
from signalprop.nn import (
    BranchTap,
    DropPath,
    ResidualBlock,
    ScaledStdConv2d,
    SkipInit,
    group_norm,
    he_gain,
)
from signalprop.nn.activations import make_activation

# phi(c x) = c phi(x) for c > 0: a positive input scale can move past the activation.
_HOMOGENEOUS = ("relu", "leaky_relu", "abs", "identity")


def _he_gain(activation: str) -> float:
    # Generalised He init: Var(w) = gain^2 / fan_in keeps E[x^2] through phi -> conv;
    # gain^2 = 1 / E[phi(z)^2] (= 2 for ReLU).
    return he_gain(activation)


class PreActBottleneck(ResidualBlock):
    """Pre-activation bottleneck for ``norm`` in ``"bn"``, ``"none"``, ``"skipinit"``, ``"gn_ws"``.

    out = shortcut + g * conv3(act(n3(conv2(act(n2(conv1(act(n1(x)))))))))
    where the shortcut is x, or a 1x1 projection of act(n1(x)) at transitions, and g is an
    optional SkipInit gain (always present for ``"skipinit"``). n is BatchNorm (``bn``),
    GroupNorm (``gn_ws``, whose convolutions are Scaled-WS with the activation's gamma, so
    a unit-variance input gives unit-variance conv outputs) or nothing.

    Examples:
        >>> import torch
        >>> block = PreActBottleneck(16, 32, stride=2, norm="bn", activation="relu")
        >>> block.is_transition, block(torch.randn(2, 16, 8, 8)).shape
        (True, torch.Size([2, 32, 4, 4]))
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, norm: str, activation: str,
        skipinit: bool = False, skipinit_init: float = 0.0, drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid = out_ch // 4
        bias = norm in ("none", "skipinit")
        conv: type[nn.Conv2d] | functools.partial[nn.Conv2d] = nn.Conv2d
        if norm == "gn_ws":
            conv = functools.partial(ScaledStdConv2d, gamma=theory.gamma(activation))

        def norm_layer(c: int) -> nn.Module:
            if norm == "bn":
                return nn.BatchNorm2d(c)
            return group_norm(c) if norm == "gn_ws" else nn.Identity()

        self.norm1, self.act1 = norm_layer(in_ch), make_activation(activation)
        self.conv1 = conv(in_ch, mid, 1, bias=bias)
        self.norm2, self.act2 = norm_layer(mid), make_activation(activation)
        self.conv2 = conv(mid, mid, 3, stride=stride, padding=1, bias=bias)
        self.norm3, self.act3 = norm_layer(mid), make_activation(activation)
        self.conv3 = conv(mid, out_ch, 1, bias=bias)
        self.is_transition = stride != 1 or in_ch != out_ch
        self.shortcut = (
            conv(in_ch, out_ch, 1, stride=stride, bias=bias) if self.is_transition else None
        )
        self.branch_tap = BranchTap()
        skipinit = skipinit or norm == "skipinit"
        self.skip_gain = SkipInit(skipinit_init) if skipinit else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.norm1(x))
        shortcut = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.conv3(self.act3(self.norm3(out)))
        out = self.branch_tap(out)
        if self.skip_gain is not None:
            out = self.skip_gain(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return self.residual_add(shortcut, out)

    def adds_tapped_branch(self) -> bool:
        return self.skip_gain is None and self.drop_path is None


class NFBottleneck(ResidualBlock):
    """Normalizer-free pre-activation bottleneck (Brock, De & Smith 2021).

    out = shortcut + alpha * g * f(x / beta), f = conv3 . act . conv2 . act . conv1 . act,
    with Scaled WS convolutions and gamma-scaled activations, so Var(f) ~ 1 when
    Var(x) ~ beta^2. ``expected_var`` is the block output's predicted variance.

    NOTE: the activation gain gamma is applied by the Scaled WS convolutions that read each
    activation (their ``gamma``: W_hat is scaled by it), not by a separate multiplication,
    which saves a pass over every activation tensor in forward and backward (timm's NF
    ResNets offer the same, ``gamma_in_act=False``). For positively homogeneous activations
    (relu, leaky_relu, abs, identity: phi(x / beta) = phi(x) / beta) 1/beta moves into
    ``conv1`` and the projection shortcut as well. The function computed is unchanged;
    ``input_scale`` is what still multiplies x before ``act1``.

    Examples:
        >>> import torch
        >>> block = NFBottleneck(16, 16, stride=1, beta=1.0, alpha=0.2, activation="relu",
        ...                      expected_var=1.04)
        >>> x = torch.randn(8, 16, 8, 8)  # Var(x) = beta^2 = 1
        >>> with torch.no_grad():
        ...     branch_var = float((block(x) - x).var())
        >>> 0.02 < branch_var < 0.06  # alpha^2 Var(f) with Var(f) ~ 1
        True
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, beta: float, alpha: float,
        activation: str, expected_var: float, skipinit: bool = False,
        skipinit_init: float = 0.0, drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid = out_ch // 4
        self.beta, self.alpha, self.expected_var = float(beta), float(alpha), float(expected_var)
        gamma = theory.gamma(activation)
        homogeneous = theory.get_activation(activation).name in _HOMOGENEOUS
        self.input_scale = 1.0 if homogeneous else 1.0 / self.beta
        gamma_in = gamma / self.beta if homogeneous else gamma
        self.act1 = make_activation(activation)
        self.conv1 = ScaledStdConv2d(in_ch, mid, 1, gamma=gamma_in)
        self.act2 = make_activation(activation)
        self.conv2 = ScaledStdConv2d(mid, mid, 3, stride=stride, padding=1, gamma=gamma)
        self.act3 = make_activation(activation)
        self.conv3 = ScaledStdConv2d(mid, out_ch, 1, gamma=gamma)
        self.is_transition = stride != 1 or in_ch != out_ch
        # NOTE: like DeepMind's reference, the projection takes the scaled *activated*
        # input (gamma * act(x / beta)), whose variance is 1 like the branch's.
        self.shortcut = (
            ScaledStdConv2d(in_ch, out_ch, 1, stride=stride, gamma=gamma_in)
            if self.is_transition else None
        )
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(skipinit_init) if skipinit else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(x if self.input_scale == 1.0 else x * self.input_scale)
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(out))
        out = self.conv3(self.act3(out))
        out = self.branch_tap(out)
        if self.skip_gain is not None:
            out = self.skip_gain(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return self.residual_add(shortcut, out, self.alpha)

    def adds_tapped_branch(self) -> bool:
        return self.skip_gain is None and self.drop_path is None

    def extra_repr(self) -> str:
        return f"beta={self.beta:.4f}, alpha={self.alpha:g}, expected_var={self.expected_var:.4f}"
