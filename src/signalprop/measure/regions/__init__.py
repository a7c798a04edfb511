"""Linear regions of piecewise-linear networks, counted exactly.

* :func:`linear_regions`: the pieces along segments (breakpoints, patterns, slopes);
* :func:`plane_regions`: the regions of a 2-D slice, as polygons;
* :func:`region_density`: boundaries crossed per unit length along random lines through
  data points (Hanin & Rolnick 2019).

Any model built from Linear, Conv, eval-mode BatchNorm, ReLU-like units, clamps, abs,
maximum and max-pooling (with residual additions and reshapes in between) is supported;
step functions (round, floor, sign: quantizers) make jumps, counted separately. Other
layers and smooth functions are refused by name.
"""

from signalprop.measure.regions._linear_regions import linear_regions, region_density
from signalprop.measure.regions._pieces import NotAffineError
from signalprop.measure.regions._plane_regions import plane_regions
from signalprop.measure.regions._support import supported_names

__all__ = ["NotAffineError", "linear_regions", "plane_regions", "region_density",
           "supported_names"]
