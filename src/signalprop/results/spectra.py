"""Spectra of the input-output Jacobian and of the loss Hessian: :class:`JacobianSpectrumResult`,
:class:`HessianExtremesResult`.

Values from Lanczos come with residual bounds r: an exact eigenvalue lies within r of each
reported Ritz value (for the Jacobian, eigenvalues of J J^T or J^T J, i.e. squared singular
values). By interlacing, the j-th smallest reported value is >= the exact j-th smallest and
the j-th largest <= the exact j-th largest; a value repeated at least ``block`` times is
reported up to ``block`` times. ``complete``: the Krylov space was the whole space, so the
values are exact (r is then rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import Result


@dataclass
class JacobianSpectrumResult(Result):
    """Singular values of each example's input-output Jacobian J_b (out_dim x in_dim).

    Attributes:
        label: model name.
        in_dim, out_dim: per-example input and output sizes; J_b has min(in, out)
            singular values.
        top: (B, k) largest singular values per example, descending.
        bottom: (B, k) smallest of the min(in, out) singular values, ascending.
        top_residual, bottom_residual: (B, k) bounds on the error of the squared values.
        mean_sq_sv: (B,) mean of sigma^2 over the min(in, out) singular values,
            tr(J J^T) / min(in, out).
        mean_sq_sv_se: (B,) its standard error (0 when computed exactly).
        trace_probes: probe vectors used for the trace (exact: one per basis vector).
        exact_trace: whether ``mean_sq_sv`` is exact rather than a Hutchinson estimate.
        steps: Lanczos steps (products per example).
        block: Lanczos start vectors (k): a singular value repeated ``block`` times or more
            can appear that many times among ``top`` / ``bottom``.
        complete: whether the Krylov space was the whole space (the values are exact).

    Examples:
        >>> s = JacobianSpectrumResult("toy", 2, 2, [[2.0]], [[1.0]], [[0.0]], [[0.0]], [2.5],
        ...                      [0.0], 2, True, 2)
        >>> JacobianSpectrumResult.from_json(s.to_json()).condition_number
        [2.0]
    """

    label: str
    in_dim: int
    out_dim: int
    top: list[list[float]]
    bottom: list[list[float]]
    top_residual: list[list[float]]
    bottom_residual: list[list[float]]
    mean_sq_sv: list[float]
    mean_sq_sv_se: list[float]
    trace_probes: int
    exact_trace: bool
    steps: int
    block: int = 1
    complete: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


    @property
    def batch_size(self) -> int:
        return len(self.top)

    @property
    def condition_number(self) -> list[float]:
        """sigma_max / sigma_min per example (inf when sigma_min is 0)."""
        return [t[0] / b[0] if b[0] > 0 else math.inf for t, b in zip(self.top, self.bottom)]

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per example: extreme singular values, mean squared one, condition."""
        cols = ["example", "sigma_max", "sigma_min", "mean_sq_sv", "mean_sq_sv_se", "condition"]
        return cols, [[i, t[0], b[0], m, se, c] for i, (t, b, m, se, c) in enumerate(
            zip(self.top, self.bottom, self.mean_sq_sv, self.mean_sq_sv_se,
                self.condition_number))]


@dataclass
class HessianExtremesResult(Result):
    """Extreme eigenvalues of the Hessian of the loss with respect to all trainable
    parameters, at the given batch.

    Attributes:
        label: model name.
        dim: number of trainable parameters.
        largest: k largest eigenvalues, descending.
        smallest: k smallest (most negative) eigenvalues, ascending.
        largest_residual, smallest_residual: error bounds of each value.
        steps: Lanczos steps (Hessian-vector products).
        loss: the loss at which the Hessian was taken.
        block: Lanczos start vectors (k): an eigenvalue repeated ``block`` times or more
            can appear that many times among ``largest`` / ``smallest``.
        complete: whether the Krylov space was the whole space (the values are exact).

    Examples:
        >>> h = HessianExtremesResult("toy", 3, [2.0], [-1.0], [0.0], [0.0], 3, 0.5)
        >>> HessianExtremesResult.from_json(h.to_json()).smallest
        [-1.0]
    """

    label: str
    dim: int
    largest: list[float]
    smallest: list[float]
    largest_residual: list[float]
    smallest_residual: list[float]
    steps: int
    loss: float
    block: int = 1
    complete: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per reported eigenvalue (``end`` is "largest" or "smallest")."""
        rows = [["largest", i, v, r] for i, (v, r) in
                enumerate(zip(self.largest, self.largest_residual))]
        rows += [["smallest", i, v, r] for i, (v, r) in
                 enumerate(zip(self.smallest, self.smallest_residual))]
        return ["end", "rank", "eigenvalue", "residual"], rows
