"""Weight grids of quantized layers: which levels, how codes are assigned, how they are scaled.

A quantized weight is ``Q(w) = alpha * c(w)`` with integer codes c in {-L, ..., L}:

* ``"binary"``: c = sign(w) in {-1, +1} (sign(0) = +1), L = 1 (BinaryConnect);
* ``"ternary"``: c = sign(w) 1{|w| > delta E|w|} in {-1, 0, +1}, delta = 0.7
  (Li & Liu, "Ternary weight networks", 2016: the threshold that approximately minimises
  ||w - alpha c||^2 for Gaussian or uniform weights);
* an integer bit width k >= 2: L = 2^(k-1) - 1 and c = clamp(round(w / s), -L, L) on the
  symmetric ("narrow range") uniform grid with step s = 2 E|w| / sqrt(L) (the step-size
  initialisation of LSQ, Esser et al., ICLR 2020).

The scale alpha (over the whole tensor, or per output channel):

* ``"mean_abs"``: the least-squares fit alpha = <w, c> / <c, c> (XNOR-Net's mean |w| for
  binary codes, TWN's mean |w| over the non-zero codes for ternary ones);
* ``"rms"``: alpha = rms(w) / rms(c), so that mean Q(w)^2 = mean w^2 exactly;
* ``None``: no rescaling -- alpha = 1 for binary / ternary codes (weights are exactly
  +-1 / 0), alpha = s for k-bit codes (plain round-to-nearest on the step-s grid).

This module is the single source of truth for these rules; ``signalprop.nn`` applies them.

Examples:
    >>> check_levels("binary"), max_code(4), max_code("ternary")
    ('binary', 7, 1)
    >>> round(step_factor(4), 4)   # s = 2 E|w| / sqrt(7)
    0.7559
"""

from __future__ import annotations

import math
from typing import Any

#: Named weight grids (an integer bit width 2..16 is also allowed).
LEVEL_NAMES = ("binary", "ternary")
#: Allowed ``scale`` values.
SCALES = ("mean_abs", "rms", None)
#: TWN threshold: codes are zero where |w| <= 0.7 E|w| (Li & Liu 2016).
TERNARY_THRESHOLD = 0.7
MAX_BITS = 16

Levels = str | int


def check_levels(levels: Any) -> Levels:
    """``levels`` validated: ``"binary"``, ``"ternary"`` or an integer bit width 2..16.

    Raises:
        ValueError: anything else (the message lists the allowed values).

    Examples:
        >>> check_levels(4)
        4
    """
    if isinstance(levels, str):
        if levels in LEVEL_NAMES:
            return levels
    elif not isinstance(levels, bool) and isinstance(levels, int) and 2 <= levels <= MAX_BITS:
        return int(levels)
    raise ValueError(f"weight_levels must be 'binary', 'ternary' or an integer bit width "
                     f"2..{MAX_BITS}, got {levels!r}")


def check_scale(scale: Any) -> str | None:
    """``scale`` validated: ``"mean_abs"``, ``"rms"`` or ``None``.

    Examples:
        >>> check_scale("rms") is None, check_scale(None) is None
        (False, True)
    """
    if scale is None or (isinstance(scale, str) and scale in SCALES):
        return scale
    raise ValueError(f"scale must be one of 'mean_abs', 'rms' or None, got {scale!r}")


def max_code(levels: Levels) -> int:
    """L, the largest code: 1 for binary / ternary, 2^(k-1) - 1 for k bits.

    Examples:
        >>> max_code("ternary"), max_code(8)
        (1, 127)
    """
    levels = check_levels(levels)
    return 1 if isinstance(levels, str) else 2 ** (levels - 1) - 1


def step_factor(bits: int) -> float:
    """s / E|w| for a k-bit grid: 2 / sqrt(L) (LSQ's initial step).

    Examples:
        >>> step_factor(2)
        2.0
    """
    return 2.0 / math.sqrt(max_code(bits))


def grid_codes(levels: Levels) -> list[int]:
    """The codes a grid can hold, ascending (binary has no 0).

    Examples:
        >>> grid_codes("binary"), grid_codes(3)
        ([-1, 1], [-3, -2, -1, 0, 1, 2, 3])
    """
    levels = check_levels(levels)
    if levels == "binary":
        return [-1, 1]
    top = max_code(levels)
    return list(range(-top, top + 1))
