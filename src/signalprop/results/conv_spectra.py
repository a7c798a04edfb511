"""Singular values of convolution layers and the existence of orthogonal ones:
:class:`ConvSpectrumResult` (one layer), :class:`ConvSpectraResult` (every conv of a model,
one :class:`ConvLayerSpectrum` record each) and :class:`Existence` (the answer of
:func:`signalprop.theory.orthogonal_conv_exists`).

A layer's operator maps inputs of a given shape to outputs; it has min(rows, cols) singular
values. ``exact`` results know every one of them; bounds results bracket the extremes:
``sigma_max`` lies in ``sigma_max_bounds`` and ``sigma_min`` in ``sigma_min_bounds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import TENSOR, RecordsResult, Result


def _condition(smax: float, smin: float) -> float:
    if math.isnan(smax) or math.isnan(smin):
        return math.nan
    return smax / smin if smin > 0 else math.inf


@dataclass
class ConvSpectrumResult(Result):
    """Singular values of one convolution layer applied to inputs of one shape.

    Attributes:
        label: the layer's name (its class name by default).
        layer: the layer's repr (type, channels, kernel, stride, padding).
        input_shape: (C, *spatial) of one input example.
        output_shape: (M, *spatial) of one output example.
        method: ``"fft"`` (circular padding: one small SVD per frequency), ``"pointwise"``
            (a kernel with one live tap: the channel matrix's values, repeated),
            ``"dense"`` (SVD of the explicit operator) or ``"bounds"`` (Lanczos on
            conv / conv-transpose products and a circular-embedding upper bound).
        exact: whether every singular value is known (all methods but ``"bounds"``).
        n_values: min(rows, cols) of the operator, the number of singular values.
        sigma_max, sigma_min: the largest and smallest of them (for bounds: the best
            estimates, certified lower / upper bounds respectively).
        sigma_max_bounds, sigma_min_bounds: (low, high) intervals that certainly hold the
            true values (width 0 from SVDs, the rounding error from Gram eigenvalues).
        singular_values: (n_values,) float64, descending, when exact and kept; else None.
        meta: how they were computed (frequencies, Lanczos steps, ...).

    Examples:
        >>> r = ConvSpectrumResult("c", "Conv2d", (1, 4, 4), (1, 4, 4), "fft", True, 16,
        ...                        2.0, 0.5, (2.0, 2.0), (0.5, 0.5))
        >>> r.condition, ConvSpectrumResult.from_json(r.to_json()).sigma_min
        (4.0, 0.5)
    """

    label: str
    layer: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    method: str
    exact: bool
    n_values: int
    sigma_max: float
    sigma_min: float
    sigma_max_bounds: tuple[float, float]
    sigma_min_bounds: tuple[float, float]
    singular_values: Any = field(default=None, metadata=TENSOR)
    meta: dict[str, Any] = field(default_factory=dict)

    json_extras = ("condition",)
    csv_exclude = ("meta", "singular_values")

    @property
    def condition(self) -> float:
        """sigma_max / sigma_min (inf when sigma_min is 0)."""
        return _condition(self.sigma_max, self.sigma_min)

    @property
    def max_sq_deviation(self) -> float:
        """max |sigma^2 - 1| over the singular values: the spectral orthogonality error
        err^s of Achour et al. (2022) (from the extremes; an interval for bounds)."""
        return max(abs(self.sigma_max ** 2 - 1.0), abs(self.sigma_min ** 2 - 1.0))


@dataclass(frozen=True)
class ConvLayerSpectrum:
    """The spectrum summary of one conv call in a model.

    Attributes:
        name: qualified module name (``#2`` etc. for later calls of a shared module).
        index: position in call order.
        layer: the module's repr.
        input_shape, output_shape: per example, (C, *spatial) and (M, *spatial).
        method, exact, n_values, sigma_max, sigma_min: as in :class:`ConvSpectrumResult`.
        sigma_max_low, sigma_max_high, sigma_min_low, sigma_min_high: certified intervals.

    Examples:
        >>> r = ConvLayerSpectrum("conv", 0, "Conv2d", (1, 4, 4), (1, 4, 4), "bounds", False,
        ...                       16, 2.0, 0.5, 2.0, 2.1, 0.0, 0.5)
        >>> r.condition, r.sigma_max_low <= r.sigma_max <= r.sigma_max_high
        (4.0, True)
    """

    name: str
    index: int
    layer: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    method: str
    exact: bool
    n_values: int
    sigma_max: float
    sigma_min: float
    sigma_max_low: float
    sigma_max_high: float
    sigma_min_low: float
    sigma_min_high: float

    @property
    def condition(self) -> float:
        """sigma_max / sigma_min (inf when sigma_min is 0)."""
        return _condition(self.sigma_max, self.sigma_min)


@dataclass
class ConvSpectraResult(RecordsResult):
    """The spectrum of every convolution of a model, as it is called on an input.

    Attributes:
        label: model name.
        records: one :class:`ConvLayerSpectrum` per conv call, in call order.
        input_shape: the model input's shape.
        meta: the options used (method, steps) and the total time.

    Examples:
        >>> rec = ConvLayerSpectrum("conv", 0, "Conv2d", (1, 4, 4), (1, 4, 4), "fft", True,
        ...                         16, 2.0, 0.5, 2.0, 2.0, 0.5, 0.5)
        >>> ConvSpectraResult.from_json(ConvSpectraResult("m", [rec]).to_json()).condition
        [4.0]
    """

    label: str
    records: list[ConvLayerSpectrum]
    input_shape: tuple[int, ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)



    @property
    def sigma_max(self) -> list[float]:
        return self.column("sigma_max")

    @property
    def sigma_min(self) -> list[float]:
        return self.column("sigma_min")

    @property
    def condition(self) -> list[float]:
        return self.column("condition")


@dataclass
class Existence(Result):
    """Whether an orthogonal convolution exists for an architecture, and why.

    Attributes:
        exists: the verdict.
        case: ``"RO"`` (row-orthogonal, M <= C S^d: K K^T = Id, a dimensionality
            reduction), ``"CO"`` (column-orthogonal, M >= C S^d: K^T K = Id, an
            embedding) or ``"square"`` (M = C S^d: both).
        reason: which condition holds or fails, and what would make it hold.
        meta: the numbers the conditions compare.

    Examples:
        >>> e = Existence(False, "RO", "M > C k^2")
        >>> Existence.from_json(e.to_json()).exists
        False
    """

    exists: bool
    case: str
    reason: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.exists
