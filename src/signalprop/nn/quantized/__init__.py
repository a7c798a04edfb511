"""Low-precision layers: quantized Linear / Conv1d / Conv2d, their weight quantizers and the
straight-through estimators of sign (the rules live in ``signalprop.theory.quantized``).

Examples:
    >>> import torch
    >>> from signalprop.nn import QuantLinear
    >>> layer = QuantLinear(16, 4, weight_levels="binary", act_levels="binary",
    ...                     estimator="reste")
    >>> layer(torch.randn(2, 16)).shape
    torch.Size([2, 4])
"""

from signalprop.nn.quantized._layers import (
    ACT_LEVELS,
    QUANT_LAYERS,
    QuantConv1d,
    QuantConv2d,
    QuantLinear,
    quantize_modules,
    quantized_layers,
)
from signalprop.nn.quantized._quantizer import WeightQuantizer
from signalprop.nn.quantized._rounding import round_to_grid, round_to_grid_
from signalprop.nn.quantized._surrogate import ReSTESchedule, sign_surrogate

__all__ = [
    "ACT_LEVELS",
    "QUANT_LAYERS",
    "QuantConv1d",
    "QuantConv2d",
    "QuantLinear",
    "ReSTESchedule",
    "WeightQuantizer",
    "quantize_modules",
    "quantized_layers",
    "round_to_grid",
    "round_to_grid_",
    "sign_surrogate",
]
