"""Checks and conversions shared by the region measurements."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.measure._options import check_int


def as_points(name: str, x: Any, shape: tuple[int, ...] | None = None) -> Tensor:
    """``x`` as a float64 CPU tensor with a batch axis, finite, of ``shape`` if given.

    Raises:
        ValueError: not a floating tensor, no batch axis, NaN/Inf, or the wrong shape.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor with the batch axis first, "
                         f"got {type(x).__name__ if not isinstance(x, Tensor) else x.dtype}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have a batch axis with at least one entry, "
                         f"got shape {tuple(x.shape)}")
    if shape is not None and tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (like x), got {tuple(x.shape)}")
    x = x.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or Inf")
    return x


def check_options(tol: float, chunk: int) -> None:
    """Raises ValueError for a tolerance outside (0, 1e-3] or a chunk < 1."""
    if isinstance(tol, bool) or not (isinstance(tol, numbers.Real) and 0 < tol <= 1e-3
                                     and math.isfinite(tol)):
        raise ValueError(f"tol must be in (0, 1e-3], got {tol!r}")
    check_int("chunk", chunk, low=1)


def model_label(model: nn.Module, label: str | None) -> str:
    """``label``, or the model's class name."""
    return label if label is not None else type(model).__name__
