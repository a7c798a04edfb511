"""Figures (matplotlib only). Plots take result objects and never recompute them."""

from signalprop.plot.spp import spp

__all__ = ["spp"]
