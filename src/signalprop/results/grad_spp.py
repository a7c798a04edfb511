"""Gradient propagation records: :class:`GradBlockStats`, :class:`GradSPPResult`, and
:func:`chi_prediction`, the mean-field overlay for plain networks.

Per block, over channels c of g = dL/d(block output) (statistics as for the forward SPP):

* ``grad_avg_sq_mean`` = mean_c (mean g_c)^2, ``grad_avg_var`` = mean_c var(g_c);
* ``param_grad_norm`` = |dL/d theta| over the block's trainable parameters.

In a plain deep network at mean-field initialization the gradient variance changes by
chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] per layer going backwards (Schoenholz et al.
2017): it decays as chi_1^depth in the ordered phase and grows in the chaotic one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from signalprop.results._base import RecordsResult


@dataclass(frozen=True)
class GradBlockStats:
    """Gradient statistics at one block.

    Attributes:
        name: qualified module name (``#k`` for its k-th call) or a theory label.
        index: position along the trunk (0 = first block, nearest the input).
        grad_avg_sq_mean: mean over channels of the squared channel mean of dL/dy.
        grad_avg_var: mean over channels of the (biased) channel variance of dL/dy.
        param_grad_norm: L2 norm of the gradient of the block's trainable parameters
            (``None`` for a repeated call, for predictions, or without parameters).
        n_params: number of trainable parameters of the block.
        nonfinite: NaN/Inf values in dL/dy and the parameter gradients.

    Examples:
        >>> g = GradBlockStats("fc1", 1, grad_avg_sq_mean=0.0, grad_avg_var=0.01, n_params=72)
        >>> g.grad_avg_var, g.param_grad_norm
        (0.01, None)
    """

    name: str
    index: int
    grad_avg_sq_mean: float | None
    grad_avg_var: float | None
    param_grad_norm: float | None = None
    n_params: int = 0
    nonfinite: int = 0


@dataclass
class GradSPPResult(RecordsResult):
    """Per-block gradient statistics of one model on one batch (measured or predicted).

    Examples:
        >>> r = GradSPPResult("toy", [GradBlockStats("b0", 0, 0.0, 2.0, 1.5, 10)])
        >>> GradSPPResult.from_json(r.to_json()).records[0].grad_avg_var
        2.0
    """

    label: str
    records: list[GradBlockStats]
    kind: str = "measured"  # "measured" or "predicted"
    loss: str = "probe"  # "probe": <output, fixed Gaussian>; "loss_fn": the caller's loss
    input_shape: tuple[int, ...] | None = None
    channel_dim: int = 1
    discovery: str = ""
    meta: dict[str, Any] = field(default_factory=dict)



    @property
    def grad_avg_var(self) -> list[float | None]:
        return self.column("grad_avg_var")

    @property
    def param_grad_norm(self) -> list[float | None]:
        return self.column("param_grad_norm")

    @property
    def first_nonfinite(self) -> GradBlockStats | None:
        """The block nearest the output whose gradients hold NaN/Inf (where the backward
        pass first produced them), or ``None``."""
        return next((r for r in reversed(self.records) if r.nonfinite), None)


def chi_prediction(measured: GradSPPResult, chi: float | Sequence[float],
                   anchor: int = -1) -> GradSPPResult:
    """The mean-field prediction of gradient variance along depth, anchored on a block.

    predicted_var[l] = var[a] * prod_{j=l}^{a-1} chi_j for blocks l <= a (and divided by
    those factors above a), where chi_j is the factor by which the gradient variance
    grows from block j+1 back to block j: a scalar chi_1 (every block alike), or one value
    per gap between consecutive blocks (length len(records) - 1), e.g. per-layer chi_1 from
    the theory module's layer-by-layer propagation.

    Args:
        measured: a measured result; its ``grad_avg_var`` at ``anchor`` fixes the scale.
        chi: chi_1 (> 0), or a sequence of len(records) - 1 positive factors.
        anchor: index of the anchoring record (default: the last block, nearest the loss).

    Returns:
        A ``kind="predicted"`` result with ``grad_avg_var`` only.

    Examples:
        >>> m = GradSPPResult("mlp", [GradBlockStats(f"b{i}", i, 0.0, 1.0) for i in range(3)])
        >>> chi_prediction(m, 0.5).grad_avg_var
        [0.25, 0.5, 1.0]
    """
    n = len(measured.records)
    if n == 0:
        raise ValueError("measured has no records")
    factors = [float(chi)] * (n - 1) if isinstance(chi, (int, float)) else [float(c) for c in chi]
    if len(factors) != n - 1:
        raise ValueError(f"chi must be a number or have len(records) - 1 = {n - 1} entries, "
                         f"got {len(factors)}")
    if any(not (c > 0 and math.isfinite(c)) for c in factors):
        raise ValueError(f"chi factors must be positive and finite, got {factors}")
    a = anchor % n
    base = measured.records[a].grad_avg_var
    if base is None or not math.isfinite(base):
        raise ValueError(f"the anchor block {measured.records[a].name!r} has no finite "
                         f"gradient variance ({base})")
    log_var = [0.0] * n
    for j in range(a - 1, -1, -1):
        log_var[j] = log_var[j + 1] + math.log(factors[j])
    for j in range(a + 1, n):
        log_var[j] = log_var[j - 1] - math.log(factors[j - 1])
    recs = [replace(r, grad_avg_sq_mean=None, grad_avg_var=base * math.exp(lv),
                    param_grad_norm=None, n_params=0, nonfinite=0)
            for r, lv in zip(measured.records, log_var)]
    return GradSPPResult(measured.label, recs, kind="predicted", loss=measured.loss,
                         input_shape=measured.input_shape, channel_dim=measured.channel_dim,
                         discovery=measured.discovery,
                         meta={"chi": factors, "anchor": measured.records[a].name})

