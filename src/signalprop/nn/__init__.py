"""Torch layers that control signal propagation (constants come from signalprop.theory)."""

from signalprop.nn.activations import GammaAct, make_activation, torch_activation
from signalprop.nn.init import critical_, delta_orthogonal_, lecun_normal_
from signalprop.nn.residual import BranchTap, ResidualBlock, SkipInit
from signalprop.nn.std_conv import (
    ScaledStdConv1d,
    ScaledStdConv2d,
    ScaledStdConv3d,
    WSLinear,
    standardize_weight,
)

__all__ = [
    "BranchTap",
    "GammaAct",
    "ResidualBlock",
    "ScaledStdConv1d",
    "ScaledStdConv2d",
    "ScaledStdConv3d",
    "SkipInit",
    "WSLinear",
    "critical_",
    "delta_orthogonal_",
    "lecun_normal_",
    "make_activation",
    "standardize_weight",
    "torch_activation",
]
