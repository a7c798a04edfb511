"""Torch layers that control signal propagation (constants come from signalprop.theory).

Every public name is importable flat, ``signalprop.nn.X``; the modules show the parts:

- ``activations``: activations by the names of :mod:`signalprop.theory.activations`
  (``torch_activation``, ``make_activation``) and ``GammaAct`` (activation times gamma).
- ``residual``: ``ResidualBlock`` and ``BranchTap``, the structure measurement reads, and
  the learnable scalars on residual branches: ``SkipInit``, ``ReZero``, ``ScalarBias``;
  ``DropPath`` (stochastic depth).
- ``init``: initializers from the theory (``critical_``, ``lecun_normal_``,
  ``delta_orthogonal_``); ``sp.nn.init.critical_`` is also the spelled-out path.
- ``group_norm``: GroupNorm whose group count divides the channels.
- ``attention/``: ``SelfAttention`` with softmax, elementwise ("none", "sigmoid", "relu")
  or no normalization of its weights, a LayerNorm / RMSNorm / no normalization layer and
  an optional residual connection (counting needs sums, not averages).
- ``recurrent/``: ``LinearRNN2d``, a 2-D linear recurrence with Source/Transition/Mark
  gates (pLSTM's naive, P and D modes) in wavefront order.
- ``normfree/``: what replaces normalization layers: Scaled Weight Standardization
  (``ScaledStdConv1d/2d/3d``, ``WSLinear``, ``standardize_weight``) and Fixup
  (``fixup_init_``, ``fixup_scale``, ``he_gain``).
- ``hypercomplex/``: parameterized hypercomplex layers (``PHMLinear``, ``PHConv1d/2d``,
  ``compose_weight``) and their conversion from dense layers (``to_ph_layer``,
  ``nearest_ph_factors``).
- ``orthogonal/``: orthogonal convolutions: the L_orth regularizer (``orth_penalty``) and
  an exactly orthogonal circular convolution (``OrthoConv2d``: block convolutions or the
  Cayley transform).
- ``quantized/``: low-precision layers (``QuantLinear``, ``QuantConv1d/2d``) with binary,
  ternary or k-bit weights and binary inputs, their ``WeightQuantizer``, the surrogate
  gradients of sign (``sign_surrogate``, ``ReSTESchedule``) and ``quantize_modules``.

A new layer family gets its own subpackage beside ``normfree/`` (``quantized/``,
``orthogonal/``, ``hypercomplex/``, ``attention/``, ...), private modules inside, its
public names re-exported here. Layers follow torch.nn: the constructor of the module they
replace plus their own arguments, ``device``/``dtype``, ``reset_parameters``, the paper
cited, and what they do to the mean and variance of the signal stated in the docstring.
"""

from signalprop.nn.activations import GammaAct, make_activation, torch_activation
from signalprop.nn.attention import SelfAttention, make_norm
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
from signalprop.nn.orthogonal import OrthoConv2d, orth_penalty
from signalprop.nn.quantized import (
    QuantConv1d,
    QuantConv2d,
    QuantLinear,
    ReSTESchedule,
    WeightQuantizer,
    quantize_modules,
    quantized_layers,
    sign_surrogate,
)
from signalprop.nn.recurrent import LinearRNN2d
from signalprop.nn.residual import (
    BranchTap,
    DropPath,
    ResidualBlock,
    ReZero,
    ScalarBias,
    SkipInit,
)

__all__ = [
    "BranchTap",
    "DropPath",
    "GammaAct",
    "PHConv1d",
    "PHConv2d",
    "PHMLinear",
    "LinearRNN2d",
    "QuantConv1d",
    "QuantConv2d",
    "QuantLinear",
    "ReSTESchedule",
    "OrthoConv2d",
    "ReZero",
    "ResidualBlock",
    "ScalarBias",
    "ScaledStdConv1d",
    "ScaledStdConv2d",
    "ScaledStdConv3d",
    "SelfAttention",
    "SkipInit",
    "WSLinear",
    "compose_weight",
    "WeightQuantizer",
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
    "make_norm",
    "quantize_modules",
    "quantized_layers",
    "sign_surrogate",
    "orth_penalty",
    "standardize_weight",
    "to_ph_layer",
    "torch_activation",
]
