"""Figures (matplotlib only). Plots take result objects and never recompute them."""

from signalprop.plot.collapse import collapse_history
from signalprop.plot.confusion import confusion
from signalprop.plot.grad_spp import gradient_spp
from signalprop.plot.phase import phase_diagram
from signalprop.plot.spp import spp

__all__ = ["collapse_history", "confusion", "gradient_spp", "phase_diagram", "spp"]
