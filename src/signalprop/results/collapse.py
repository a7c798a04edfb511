"""Result of a representation-collapse check: how spread out a model's embeddings are."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signalprop.results._base import Result


@dataclass
class CollapseResult(Result):
    """Collapse statistics of a batch of embeddings z (B, d) (and of a second view z').

    Attributes:
        std: mean over dimensions of the standard deviation, over the batch, of the
            l2-normalized embeddings z / ||z||: 1 / sqrt(d) for embeddings spread
            isotropically, 0 for a complete collapse to one vector.
        effective_rank: exp of the entropy of the normalized singular values
            p_k = s_k / sum s of the (uncentered) embedding matrix (Roy & Vetterli 2007;
            RankMe): between 1 and min(B, d); 0 when every embedding is zero.
        cos_views: mean cosine between the two views of each example (None without z').
        cos_examples: mean cosine between the embeddings of different examples.
        dead_dims: dimensions whose standard deviation over the batch is at most
            ``dead_tol`` times the root mean square of all embedding entries.
        dim: d.
        batch_size: B.
        dead_tol: the threshold of ``dead_dims``.
        nonfinite: NaN/Inf entries in the embeddings (the statistics are NaN if any).
        label: the model's name.
        meta: anything else.

    Examples:
        >>> r = CollapseResult(0.125, 40.2, 0.9, 0.01, 0, 64, 256, 1e-3)
        >>> round(r.std_ratio, 3), CollapseResult.from_json(r.to_json()).dead_dims
        (1.0, 0)
    """

    std: float
    effective_rank: float
    cos_views: float | None
    cos_examples: float
    dead_dims: int
    dim: int
    batch_size: int
    dead_tol: float
    nonfinite: int = 0
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    json_extras: ClassVar[tuple[str, ...]] = ("std_ratio",)

    @property
    def std_ratio(self) -> float:
        """``std * sqrt(dim)``: 1 without collapse, 0 for a complete collapse."""
        return self.std * math.sqrt(self.dim)

    def summary(self) -> str:
        """One line with every statistic."""
        views = "n/a" if self.cos_views is None else f"{self.cos_views:.3f}"
        return (f"std {self.std:.4g} ({self.std_ratio:.3f} of 1/sqrt({self.dim})), effective "
                f"rank {self.effective_rank:.3g}, cos views {views}, cos examples "
                f"{self.cos_examples:.3f}, dead dims {self.dead_dims}/{self.dim}")
