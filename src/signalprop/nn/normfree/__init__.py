"""Layers and initializations that replace normalization layers.

- :mod:`.std_conv`: Scaled Weight Standardization (Brock, De & Smith 2021), the convolutions
  and linear layers of NF-ResNets: ``ScaledStdConv1d/2d/3d``, ``WSLinear``,
  ``standardize_weight``.
- :mod:`.fixup`: Fixup initialization of unnormalized residual networks (Zhang, Dauphin &
  Ma 2019): ``fixup_init_``, ``fixup_scale``, ``he_gain``.

The other pieces of these recipes are shared with normalized networks and live one level
up: the gamma-scaled activation :class:`~signalprop.nn.GammaAct` (``activations``) and the
residual-branch scalars ``SkipInit``, ``ReZero`` and ``ScalarBias`` (``residual``).
"""

from signalprop.nn.normfree.fixup import fixup_init_, fixup_scale, he_gain
from signalprop.nn.normfree.std_conv import (
    ScaledStdConv1d,
    ScaledStdConv2d,
    ScaledStdConv3d,
    WSLinear,
    standardize_weight,
)

__all__ = [
    "ScaledStdConv1d",
    "ScaledStdConv2d",
    "ScaledStdConv3d",
    "WSLinear",
    "fixup_init_",
    "fixup_scale",
    "he_gain",
    "standardize_weight",
]
