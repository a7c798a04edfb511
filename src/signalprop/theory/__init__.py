"""Signal-propagation theory: NumPy/SciPy only (this package never imports torch).

The single source of truth for every constant the library uses (gamma, SELU, ...).
"""

from signalprop.theory.activations import (
    SELU_ALPHA,
    SELU_LAMBDA,
    Activation,
    activation_names,
    get_activation,
)
from signalprop.theory.gamma import DEEPMIND_GAMMA, RELU_GAMMA, activation_variance, gamma
from signalprop.theory.gaussian import gauss_expect

__all__ = [
    "DEEPMIND_GAMMA",
    "RELU_GAMMA",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "Activation",
    "activation_names",
    "activation_variance",
    "gamma",
    "gauss_expect",
    "get_activation",
]
