"""Optimizer helpers: Adaptive Gradient Clipping around any optimizer, quantized training
schemes (BinaryConnect / stochastic rounding / rounding), parameter groups."""

from signalprop.optim._head import NoLinearHeadError, find_classifier
from signalprop.optim.agc import AGC
from signalprop.optim.param_groups import param_groups
from signalprop.optim.quantized import QuantizationWarning, QuantizedTraining
from signalprop.optim.unitwise import layouts_of, unitwise_norm

__all__ = [
    "AGC",
    "NoLinearHeadError",
    "find_classifier",
    "layouts_of",
    "QuantizationWarning",
    "QuantizedTraining",
    "param_groups",
    "unitwise_norm",
]
