"""Torch layers that control signal propagation (constants come from signalprop.theory)."""

from signalprop.nn.activations import GammaAct, make_activation, torch_activation
from signalprop.nn.fixup import fixup_init_, fixup_scale, he_gain
from signalprop.nn.group_norm import group_count, group_norm
from signalprop.nn.init import critical_, delta_orthogonal_, lecun_normal_
from signalprop.nn.orthogonal import OrthoConv2d, orth_penalty
from signalprop.nn.residual import BranchTap, ResidualBlock, ReZero, ScalarBias, SkipInit
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
    "OrthoConv2d",
    "ReZero",
    "ResidualBlock",
    "ScalarBias",
    "ScaledStdConv1d",
    "ScaledStdConv2d",
    "ScaledStdConv3d",
    "SkipInit",
    "WSLinear",
    "critical_",
    "delta_orthogonal_",
    "lecun_normal_",
    "fixup_init_",
    "fixup_scale",
    "group_count",
    "group_norm",
    "he_gain",
    "make_activation",
    "orth_penalty",
    "standardize_weight",
    "torch_activation",
]
