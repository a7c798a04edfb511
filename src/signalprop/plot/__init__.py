"""Figures (matplotlib only). Plots take result objects and never recompute them."""

from signalprop.plot.phase import phase_diagram
from signalprop.plot.spp import spp

__all__ = ["phase_diagram", "spp"]
