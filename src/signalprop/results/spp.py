"""Signal Propagation Plot records: :class:`BlockStats` and :class:`SPPResult`.

Statistics follow Brock, De & Smith (ICLR 2021), taken per channel over every other axis
and then averaged over channels:

* ``avg_sq_mean`` = mean_c (mean x_c)^2
* ``avg_var``     = mean_c var(x_c)            (biased variance)
* ``res_var``     = mean_c var(branch_c), the residual branch output before any skip gain
  or alpha; ``None`` where the block has no known branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import RecordsResult


@dataclass(frozen=True)
class BlockStats:
    """Statistics of one block's output.

    Attributes:
        name: qualified module name (``model.get_submodule(name)``) or a theory label.
        index: position along the trunk, 0 for the first recorded block.
        avg_sq_mean: average over channels of the squared channel mean.
        avg_var: average over channels of the (biased) channel variance.
        res_var: average channel variance of the residual branch output, or ``None``.
        nonfinite: number of NaN/Inf values in the block output (0 for predictions).

    Examples:
        >>> b = BlockStats("stages.0.1", 1, avg_sq_mean=0.25, avg_var=1.0)
        >>> b.name, b.avg_var, b.res_var
        ('stages.0.1', 1.0, None)
    """

    name: str
    index: int
    avg_sq_mean: float
    avg_var: float
    res_var: float | None = None
    nonfinite: int = 0

    @property
    def finite(self) -> bool:
        """True when the block output held no NaN/Inf values."""
        return self.nonfinite == 0


@dataclass
class SPPResult(RecordsResult):
    """The per-block statistics of one model on one input (measured or predicted).

    Attributes:
        label: the model's name (or a theory label).
        records: one :class:`BlockStats` per block call, in execution order.
        kind: ``"measured"`` or ``"predicted"``.
        input_shape: the input's shape (None for predictions without one).
        channel_dim: the channel axis of the block outputs.
        discovery: how the blocks were found (the rule, in words).
        skips: the blocks that add a skip connection, as measured on the forward: block
            name -> ``"identity"`` (output = input + residual branches), ``"inner"`` (a
            skip inside, then a normalization, activation or projection) or ``"tapped"``
            (a signalprop residual block); None when the structure was not measured.
        meta: anything else, e.g. ``transitions`` (record indices that start a stage),
            ``mode`` ("train"/"eval") and ``path`` (how the statistics were computed).

    Examples:
        >>> r = SPPResult("toy", [BlockStats("b0", 0, 0.0, 1.0, 1.0)])
        >>> SPPResult.from_json(r.to_json()).records[0].avg_var
        1.0
    """

    label: str
    records: list[BlockStats]
    kind: str = "measured"  # "measured" or "predicted"
    input_shape: tuple[int, ...] | None = None
    channel_dim: int = 1
    discovery: str = ""
    skips: dict[str, str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)




    @property
    def avg_sq_mean(self) -> list[float]:
        return self.column("avg_sq_mean")

    @property
    def avg_var(self) -> list[float]:
        return self.column("avg_var")

    @property
    def res_var(self) -> list[float | None]:
        return self.column("res_var")

    @property
    def first_nonfinite(self) -> BlockStats | None:
        """The first block whose output held NaN/Inf values, or ``None``."""
        return next((r for r in self.records if r.nonfinite), None)


def stack_labels(results: Sequence[SPPResult]) -> list[str]:
    """Labels made unique by suffixing duplicates (``a``, ``a (2)``)."""
    seen: dict[str, int] = {}
    labels = []
    for r in results:
        n = seen.get(r.label, 0) + 1
        seen[r.label] = n
        labels.append(r.label if n == 1 else f"{r.label} ({n})")
    return labels
