"""Signal-propagation theory: NumPy/SciPy only (this package never imports torch).

The single source of truth for every constant the library uses (gamma, SELU, ...), and the
"predict" pillar: Gaussian expectations of activations, mean-field maps and their fixed
points, criticality and phase diagrams, finite-width corrections, residual variance
schedules (also of PH ResNets) and self-normalizing networks.

Examples:
    >>> from signalprop import theory
    >>> theory.critical_point("relu").sigma_w2
    2.0
    >>> theory.mean_field("tanh", sigma_w2=1.0).phase
    'critical'
"""

from signalprop.theory.activations import (
    SELU_ALPHA,
    SELU_LAMBDA,
    Activation,
    activation_names,
    get_activation,
)
from signalprop.theory.attention import NORMALIZATIONS, attention_sum, attention_weights
from signalprop.theory.criticality import (
    UNIVERSALITY_CLASSES,
    CriticalPoint,
    critical_point,
    universality_class,
)
from signalprop.theory.dag import (
    PLSTM_TRANSITIONS,
    binomial_corner_gain,
    dag_gain,
    grid_growth_rate,
    plstm_gain,
    plstm_line_graph,
)
from signalprop.theory.expectations import (
    expect_dphi2,
    expect_dphi_dphi,
    expect_phi,
    expect_phi2,
    expect_phi2_dq,
    expect_phi_phi,
)
from signalprop.theory.finite_width import FourPointVertex, four_point_vertex, relu_kurtosis_exact
from signalprop.theory.fixed_points import MeanField, c_star, mean_field, q_star
from signalprop.theory.gamma import DEEPMIND_GAMMA, RELU_GAMMA, activation_variance, gamma
from signalprop.theory.gaussian import gauss_expect, gauss_expect2
from signalprop.theory.hypercomplex import ph_resnet_schedule, ph_weight_variance
from signalprop.theory.maps import Propagation, cmap, propagate, qmap
from signalprop.theory.orthogonal import orthogonal_conv_exists
from signalprop.theory.phase import PhaseDiagram, phase_diagram
from signalprop.theory.quantized import (
    DoubleWell,
    quantized_variance_gain,
    rounding_chain,
    stationary_distribution,
    surrogate_gain,
)
from signalprop.theory.regions import (
    lower_bound_montufar,
    lower_bound_serra,
    region_bounds,
    relu_construction_count,
    ternary_construction_count,
    ternary_teeth,
    upper_bound_montufar,
    upper_bound_serra,
)
from signalprop.theory.residual import NORMS, nf_expected_variances, residual_schedule
from signalprop.theory.selu import (
    alpha_dropout_constants,
    selu_constants,
    selu_fixed_point,
    selu_jacobian,
    selu_moments,
)

__all__ = [
    "DEEPMIND_GAMMA",
    "RELU_GAMMA",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "UNIVERSALITY_CLASSES",
    "NORMALIZATIONS",
    "NORMS",
    "PLSTM_TRANSITIONS",
    "Activation",
    "CriticalPoint",
    "DoubleWell",
    "FourPointVertex",
    "MeanField",
    "PhaseDiagram",
    "Propagation",
    "activation_names",
    "alpha_dropout_constants",
    "attention_sum",
    "attention_weights",
    "binomial_corner_gain",
    "activation_variance",
    "c_star",
    "cmap",
    "critical_point",
    "dag_gain",
    "expect_dphi2",
    "expect_dphi_dphi",
    "expect_phi",
    "expect_phi2",
    "expect_phi2_dq",
    "expect_phi_phi",
    "four_point_vertex",
    "gamma",
    "gauss_expect",
    "gauss_expect2",
    "grid_growth_rate",
    "get_activation",
    "lower_bound_montufar",
    "lower_bound_serra",
    "mean_field",
    "nf_expected_variances",
    "orthogonal_conv_exists",
    "phase_diagram",
    "ph_resnet_schedule",
    "ph_weight_variance",
    "plstm_gain",
    "plstm_line_graph",
    "propagate",
    "q_star",
    "qmap",
    "quantized_variance_gain",
    "region_bounds",
    "relu_construction_count",
    "relu_kurtosis_exact",
    "residual_schedule",
    "rounding_chain",
    "selu_constants",
    "selu_fixed_point",
    "selu_jacobian",
    "selu_moments",
    "stationary_distribution",
    "surrogate_gain",
    "ternary_construction_count",
    "ternary_teeth",
    "universality_class",
    "upper_bound_montufar",
    "upper_bound_serra",
]
