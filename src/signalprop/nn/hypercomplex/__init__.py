"""Parameterized hypercomplex (PH) layers: weights built from Kronecker products.

- :mod:`._layers`: :class:`PHMLinear`, :class:`PHConv1d`, :class:`PHConv2d` and
  :func:`compose_weight` (W = sum_s kron(A_s, F_s), about 1/n of the parameters), with a
  variance-correct initialization (Var(W) = gain^2 / fan_in) and the reference code's
  Xavier-initialized factors for comparison.
- :mod:`._dense`: :func:`to_ph_layer` (the PH counterpart of a Linear / Conv layer) and
  :func:`nearest_ph_factors` (the closest n-term PH weight to a dense one).

PHYDI (Mancanelli et al. 2023) is not a layer: it is a zero-initialized scalar on every
residual branch, :class:`signalprop.nn.SkipInit` / :class:`signalprop.nn.ReZero`.
"""

from signalprop.nn.hypercomplex._dense import nearest_ph_factors, to_ph_layer
from signalprop.nn.hypercomplex._layers import (
    INITS,
    PHConv1d,
    PHConv2d,
    PHMLinear,
    compose_weight,
)

__all__ = [
    "INITS",
    "PHConv1d",
    "PHConv2d",
    "PHMLinear",
    "compose_weight",
    "nearest_ph_factors",
    "to_ph_layer",
]
