"""Gram matrix of per-example gradients: :class:`GramResult`.

Gram_ij = <grad l_i, grad l_j> over every trainable parameter, for the examples i, j of
one batch (l_i: the loss of example i alone). With ``per_layer`` the matrix is also given
per module holding parameters; the parts sum to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import TENSOR, Result


@dataclass
class GramResult(Result):
    """Per-example gradient Gram matrix of one batch.

    Attributes:
        label: the model's name.
        matrix: (B, B) float64 tensor, symmetric positive semi-definite.
        layers: module name -> its (B, B) contribution, in model order (empty unless
            asked for with ``per_layer=True``).
        strategies: module name -> how its contribution was computed (``"factorized"``,
            ``"materialized"`` or ``"torch.func"``).
        meta: anything else (``loss_value``, ``batchnorm`` policy, ...).

    Examples:
        >>> import torch
        >>> r = GramResult("toy", torch.eye(2, dtype=torch.float64), strategies={"0": "factorized"})
        >>> back = GramResult.from_json(r.to_json())
        >>> bool(torch.equal(back.matrix, r.matrix)), back.batch_size, back.strategies
        (True, 2, {'0': 'factorized'})
    """

    label: str
    matrix: Any = field(metadata=TENSOR)
    layers: dict[str, Any] = field(default_factory=dict)
    strategies: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layers:
            import torch

            self.layers = {k: v if isinstance(v, torch.Tensor)
                           else torch.tensor(v, dtype=torch.float64)
                           for k, v in self.layers.items()}

    @property
    def batch_size(self) -> int:
        return int(self.matrix.shape[0])

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per matrix entry (``layer`` empty for the total, then each layer)."""
        parts = {"": self.matrix, **self.layers}
        rows = [[layer, i, j, float(v)] for layer, m in parts.items()
                for i, row in enumerate(m.tolist()) for j, v in enumerate(row)]
        return ["layer", "i", "j", "value"], rows
