"""Results of the low-precision tools: straight-through estimator indicators and the
stationary law of quantized training as a Markov chain.

* :class:`EstimatorIndicatorsResult` (``signalprop.estimator_indicators``): per quantized
  layer, ReSTE's two indicators (Wu et al., ICCV 2023) -- the estimating error
  ||g(w) - sign(w)||_2 between the surrogate's equivalent forward g and sign, and the
  gradient instability Var(|dL/dw|) over the layer's weights.
* :class:`RoundingChainResult` (``signalprop.theory.rounding_chain``): the long-run
  probability of every grid point under stochastic rounding, rounding or BinaryConnect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import RecordsResult, Result


@dataclass(frozen=True)
class LayerIndicators:
    """ReSTE's indicators for one quantized layer's weights.

    Attributes:
        name: the layer's qualified name.
        index: its position among the quantized layers (0 = first).
        estimator: the weight quantizer's estimator ("ste", "clipped", "tanh", "reste").
        estimating_error: ||g(w) - sign(w)||_2 over the layer's weights.
        gradient_instability: Var(|dL/dw|) over the layer's weights (unbiased variance),
            averaged over the chunks of the batch.
        mean_abs_grad: mean |dL/dw| (the scale the instability is relative to).
        n_weights: number of weights.
        nonfinite: NaN/Inf values in the weight gradient.

    Examples:
        >>> LayerIndicators("fc1", 0, "reste", 12.5, 3e-4, 0.01, 4096).estimator
        'reste'
    """

    name: str
    index: int
    estimator: str
    estimating_error: float
    gradient_instability: float
    mean_abs_grad: float
    n_weights: int
    nonfinite: int = 0


@dataclass
class EstimatorIndicatorsResult(RecordsResult):
    """Estimating error and gradient instability of every quantized layer on one batch.

    Attributes:
        label: the model's name.
        records: one :class:`LayerIndicators` per quantized layer with binary weights.
        step: the training step the measurement belongs to (None when not given).
        chunks: how many equal parts of the batch the gradient instability averages over.
        loss: the loss value on the whole batch.
        meta: anything else (estimator parameters per layer).

    Examples:
        >>> r = EstimatorIndicatorsResult("net", [LayerIndicators("fc", 0, "ste", 2.0, 0.5,
        ...                                                        0.1, 64)])
        >>> r.estimating_error, EstimatorIndicatorsResult.from_json(r.to_json()).records[0].name
        (2.0, 'fc')
    """

    label: str
    records: list[LayerIndicators]
    step: int | None = None
    chunks: int = 1
    loss: float = math.nan
    meta: dict[str, Any] = field(default_factory=dict)

    json_extras = ("estimating_error", "gradient_instability")

    @property
    def estimating_error(self) -> float:
        """The sum over layers (ReSTE's model-level indicator)."""
        return float(sum(r.estimating_error for r in self.records))

    @property
    def gradient_instability(self) -> float:
        """The sum over layers (ReSTE's model-level indicator)."""
        return float(sum(r.gradient_instability for r in self.records))


@dataclass
class RoundingChainResult(Result):
    """The stationary distribution of quantized training of one weight on a grid.

    Attributes:
        label: a name for the curve.
        scheme: ``"sr"`` (stochastic rounding), ``"r"`` (rounding) or ``"bc"``
            (BinaryConnect's float buffer).
        lr: the learning rate.
        noise: the standard deviation of the gradient noise.
        grid: the grid points.
        stationary: the long-run probability of each grid point (sums to 1).
        states: the number of chain states (the grid, or BC's buffer points).
        meta: anything else.

    Examples:
        >>> r = RoundingChainResult("sr", "sr", 0.1, 1.0, [-1.0, 1.0], [0.25, 0.75], 2)
        >>> r.mass_near(0.9), r.mode
        (0.75, 1.0)
    """

    label: str
    scheme: str
    lr: float
    noise: float
    grid: list[float]
    stationary: list[float]
    states: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    csv_exclude = ("meta", "grid", "stationary")

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per grid point: scheme, lr, noise, w, probability."""
        cols = ["scheme", "lr", "noise", "w", "probability"]
        return cols, [[self.scheme, self.lr, self.noise, w, p]
                      for w, p in zip(self.grid, self.stationary)]

    def mass_near(self, w: float) -> float:
        """The probability of the grid point nearest ``w``."""
        i = min(range(len(self.grid)), key=lambda k: abs(self.grid[k] - w))
        return float(self.stationary[i])

    @property
    def mode(self) -> float:
        """The most probable grid point."""
        return float(self.grid[max(range(len(self.grid)), key=self.stationary.__getitem__)])
