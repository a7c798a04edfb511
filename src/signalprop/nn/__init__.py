"""Torch layers that control signal propagation (constants come from signalprop.theory).

Every public name is importable flat, ``signalprop.nn.X``; the modules show the parts:

- ``activations``: activations by the names of :mod:`signalprop.theory.activations`
  (``torch_activation``, ``make_activation``) and ``GammaAct`` (activation times gamma).
- ``residual``: ``ResidualBlock`` and ``BranchTap``, the structure measurement reads, and
  the learnable scalars on residual branches: ``SkipInit``, ``ReZero``, ``ScalarBias``.
- ``init``: initializers from the theory (``critical_``, ``lecun_normal_``,
  ``delta_orthogonal_``); ``sp.nn.init.critical_`` is also the spelled-out path.
- ``group_norm``: GroupNorm whose group count divides the channels.
- ``normfree/``: what replaces normalization layers: Scaled Weight Standardization
  (``ScaledStdConv1d/2d/3d``, ``WSLinear``, ``standardize_weight``) and Fixup
  (``fixup_init_``, ``fixup_scale``, ``he_gain``).
- ``hypercomplex/``: parameterized hypercomplex layers (``PHMLinear``, ``PHConv1d/2d``,
  ``compose_weight``) and their conversion from dense layers (``to_ph_layer``,
  ``nearest_ph_factors``).

A new layer family gets its own subpackage beside ``normfree/`` (``quantized/``,
``hypercomplex/``, ``attention/``, ``orthogonal/``, ...), private modules inside, its
public names re-exported here. Layers follow torch.nn: the constructor of the module they
replace plus their own arguments, ``device``/``dtype``, ``reset_parameters``, the paper
cited, and what they do to the mean and variance of the signal stated in the docstring.
"""

from signalprop.nn.activations import GammaAct, make_activation, torch_activation
from signalprop.nn.group_norm import group_count, group_norm
from signalprop.nn.hypercomplex import (
    PHConv1d,
    PHConv2d,
    PHMLinear,
    compose_weight,
    nearest_ph_factors,
    to_ph_layer,
)
from signalprop.nn.init import critical_, delta_orthogonal_, lecun_normal_
from signalprop.nn.normfree import (
    ScaledStdConv1d,
    ScaledStdConv2d,
    ScaledStdConv3d,
    WSLinear,
    fixup_init_,
    fixup_scale,
    he_gain,
    standardize_weight,
)
from signalprop.nn.residual import BranchTap, ResidualBlock, ReZero, ScalarBias, SkipInit

__all__ = [
    "BranchTap",
    "GammaAct",
    "PHConv1d",
    "PHConv2d",
    "PHMLinear",
    "ReZero",
    "ResidualBlock",
    "ScalarBias",
    "ScaledStdConv1d",
    "ScaledStdConv2d",
    "ScaledStdConv3d",
    "SkipInit",
    "WSLinear",
    "compose_weight",
    "critical_",
    "delta_orthogonal_",
    "lecun_normal_",
    "fixup_init_",
    "fixup_scale",
    "group_count",
    "group_norm",
    "he_gain",
    "make_activation",
    "nearest_ph_factors",
    "standardize_weight",
    "to_ph_layer",
    "torch_activation",
]
