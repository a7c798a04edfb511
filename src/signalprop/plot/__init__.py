"""Figures (matplotlib only). Plots take result objects and never recompute them."""

from signalprop.plot.collapse import collapse_history
from signalprop.plot.compression import compression
from signalprop.plot.confusion import confusion
from signalprop.plot.conv_spectra import conv_spectra
from signalprop.plot.grad_spp import gradient_spp
from signalprop.plot.phase import phase_diagram
from signalprop.plot.quantized import estimator_indicators, rounding_chains
from signalprop.plot.regions import linear_regions, plane_regions, region_density
from signalprop.plot.sequence import length_spp, spatial_jacobian
from signalprop.plot.spp import spp

__all__ = ["collapse_history", "compression", "confusion", "conv_spectra",
           "estimator_indicators", "gradient_spp",
           "length_spp", "linear_regions", "phase_diagram", "plane_regions", "region_density",
           "rounding_chains", "spatial_jacobian", "spp"]
