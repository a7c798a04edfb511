"""Forward statistics: Signal Propagation Plots and the kernels that take them.

``spp`` records per-block channel statistics in one forward pass; ``channel_moments``
is its one-pass reduction (an optional C kernel, torch otherwise) and
``residual_add_moments`` the residual add that takes statistics as it adds.
"""

from signalprop.measure.forward._fused_add import fused_add_available, residual_add_moments
from signalprop.measure.forward._moments import ChannelMoments, channel_moments
from signalprop.measure.forward._spp import spp

__all__ = ["ChannelMoments", "channel_moments", "fused_add_available",
           "residual_add_moments", "spp"]
