"""Theory of low-precision networks (NumPy/SciPy only): weight grids and their variance
gain, surrogate gradients of sign and their backward gain, and quantized training of one
weight as a Markov chain (stochastic rounding vs BinaryConnect).

Examples:
    >>> from signalprop import theory
    >>> round(theory.quantized_variance_gain("binary", "mean_abs"), 4)   # 2 / pi
    0.6366
    >>> round(theory.surrogate_gain("clipped", 1.0), 4)
    0.6827
"""

from signalprop.theory.quantized._chain import (
    SCHEMES,
    DoubleWell,
    rounding_chain,
    rounding_transitions,
    stationary_distribution,
)
from signalprop.theory.quantized._estimators import (
    ESTIMATORS,
    check_estimator,
    estimator_params,
    reste_o,
    surrogate_derivative,
    surrogate_forward,
)
from signalprop.theory.quantized._gain import WEIGHTS, code_moments, quantized_variance_gain
from signalprop.theory.quantized._levels import (
    LEVEL_NAMES,
    SCALES,
    TERNARY_THRESHOLD,
    check_levels,
    check_scale,
    grid_codes,
    max_code,
    step_factor,
)
from signalprop.theory.quantized._surrogate import surrogate_gain

__all__ = [
    "ESTIMATORS",
    "LEVEL_NAMES",
    "SCALES",
    "SCHEMES",
    "TERNARY_THRESHOLD",
    "WEIGHTS",
    "DoubleWell",
    "check_estimator",
    "check_levels",
    "check_scale",
    "code_moments",
    "estimator_params",
    "grid_codes",
    "max_code",
    "quantized_variance_gain",
    "reste_o",
    "rounding_chain",
    "rounding_transitions",
    "stationary_distribution",
    "step_factor",
    "surrogate_derivative",
    "surrogate_forward",
    "surrogate_gain",
]
