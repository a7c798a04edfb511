"""Gradient confusion statistics (Sankararaman et al., ICML 2020): :class:`ConfusionResult`.

For per-example gradients g_1..g_B of one batch:

* ``eta`` = max(0, -min_{i != j} <g_i, g_j>), the gradient confusion bound
  (<g_i, g_j> >= -eta for every pair);
* the pairwise cosine similarities cos_ij = <g_i, g_j> / (|g_i| |g_j|), i < j: their
  minimum, mean, standard deviation, quantiles and a histogram over [-1, 1]. Pairs with a
  zero gradient have no cosine and are left out (``zero_gradient_examples`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import Result


@dataclass
class ConfusionResult(Result):
    """Pairwise geometry of the per-example gradients of one batch.

    Attributes:
        label: name of the model / setting.
        batch_size: B.
        n_pairs: pairs with a defined cosine (B (B - 1) / 2 without zero gradients).
        eta: max(0, -min_{i != j} <g_i, g_j>).
        min_cosine, mean_cosine, std_cosine: over the pairs (NaN without pairs).
        quantiles: {q: cosine quantile q}.
        mean_sq_norm: mean_i |g_i|^2.
        zero_gradient_examples: examples whose gradient is exactly zero.
        hist_edges, hist_counts: histogram of the cosines (len(edges) = len(counts) + 1).

    Examples:
        >>> r = ConfusionResult("toy", 3, 3, 0.5, -0.5, 0.1, 0.4, {0.5: 0.2}, 2.0, 0,
        ...                     [-1.0, 0.0, 1.0], [1, 2])
        >>> ConfusionResult.from_json(r.to_json()).quantiles
        {0.5: 0.2}
    """

    label: str
    batch_size: int
    n_pairs: int
    eta: float
    min_cosine: float
    mean_cosine: float
    std_cosine: float
    quantiles: dict[float, float]
    mean_sq_norm: float
    zero_gradient_examples: int
    hist_edges: list[float]
    hist_counts: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.hist_edges) != len(self.hist_counts) + 1:
            raise ValueError(f"hist_edges must have len(hist_counts) + 1 = "
                             f"{len(self.hist_counts) + 1} entries, got {len(self.hist_edges)}")

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """The summary row, with one ``q<value>`` column per quantile."""
        cols, rows = super().csv_rows()
        qs = sorted(self.quantiles)
        return cols + [f"q{q:g}" for q in qs], [rows[0] + [self.quantiles[q] for q in qs]]
