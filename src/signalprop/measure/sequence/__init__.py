"""Propagation along the sequence and across the grid, rather than through depth.

* :func:`length_spp`: SPP statistics of every block as the sequence grows, and the
  correlation of each token's output magnitude with its count (Ouellette et al. 2023);
* :func:`spatial_jacobian`: |dy / dx_source| over the output grid from one forward-mode
  pass: how far a perturbation travels (pLSTM, Poeppel et al. 2025).
"""

from signalprop.measure.sequence._length_spp import length_spp
from signalprop.measure.sequence._spatial_jacobian import spatial_jacobian

__all__ = ["length_spp", "spatial_jacobian"]
