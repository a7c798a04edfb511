"""Propagation along sequence length and across grids: :class:`LengthSPPResult` (SPP
statistics per block as functions of the sequence length) and
:class:`SpatialJacobianResult` (how strongly a perturbation at one grid position reaches
every output position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import TENSOR, RecordsResult, Result


@dataclass(frozen=True)
class LengthBlockStats:
    """One block's output statistics at one sequence length.

    Attributes:
        name: the block's qualified name (or a theory label).
        index: the block's position in the model's block order.
        length: the sequence length of the input.
        avg_sq_mean: average over channels of the squared channel mean (as in an SPP).
        avg_var: average over channels of the channel variance.
        rms: root mean square of the output, ``sqrt(avg_sq_mean + avg_var)`` for one
            population.
        count_corr: Pearson correlation over tokens between a token's output magnitude
            (the norm over channels) and its count, or ``None`` without counts.
        nonfinite: number of NaN/Inf values in the output.

    Examples:
        >>> LengthBlockStats("layers.0", 0, 16, 0.0, 4.0, 2.0).count_corr is None
        True
    """

    name: str
    index: int
    length: int
    avg_sq_mean: float
    avg_var: float
    rms: float
    count_corr: float | None = None
    nonfinite: int = 0


@dataclass
class LengthSPPResult(RecordsResult):
    """The length axis of a Signal Propagation Plot: per block, statistics by length.

    Attributes:
        label: the model's name (or a theory label).
        records: one :class:`LengthBlockStats` per (length, block), lengths ascending.
        kind: "measured" or "predicted".
        channel_dim: the channel axis of the block outputs.
        discovery: how the blocks were found.
        meta: anything else (the measured lengths, the model's mode, theory inputs).

    Examples:
        >>> r = LengthSPPResult("toy", [LengthBlockStats("b", 0, 4, 0.0, 1.0, 1.0),
        ...                             LengthBlockStats("b", 0, 8, 0.0, 2.0, 1.4)])
        >>> r.lengths, r.curve("b", "avg_var")
        ([4, 8], ([4, 8], [1.0, 2.0]))
        >>> LengthSPPResult.from_json(r.to_json()).records[1].length
        8
    """

    label: str
    records: list[LengthBlockStats]
    kind: str = "measured"
    channel_dim: int = -1
    discovery: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


    @property
    def lengths(self) -> list[int]:
        """The distinct lengths, ascending."""
        return sorted({r.length for r in self.records})

    @property
    def names(self) -> list[str]:
        """The distinct block names, in block order."""
        seen: dict[str, int] = {}
        for r in self.records:
            seen.setdefault(r.name, r.index)
        return sorted(seen, key=lambda n: seen[n])

    def curve(self, name: str, stat: str = "avg_var") -> tuple[list[int], list[float | None]]:
        """``(lengths, values)`` of one block's statistic ``stat`` (a record field)."""
        if stat not in LengthBlockStats.__dataclass_fields__ or stat in ("name", "index"):
            raise ValueError(f"stat must be a numeric field of LengthBlockStats, got {stat!r}")
        rows = sorted((r for r in self.records if r.name == name), key=lambda r: r.length)
        if not rows:
            raise ValueError(f"no block named {name!r}; blocks: {self.names}")
        return [r.length for r in rows], [getattr(r, stat) for r in rows]


@dataclass
class SpatialJacobianResult(Result):
    """|d y / d x_source| over the output positions: how far a perturbation travels.

    Attributes:
        label: the model's name.
        map: tensor of the output's spatial shape: ``mean_n sum_c |dy[n, c, pos] / dt|``,
            the derivative along the tangent ``t`` that perturbs the input at ``source``
            (all channels by ``direction``), averaged over the batch.
        source: the perturbed input position (one index per spatial axis).
        input_shape: the input's shape.
        output_shape: the output's shape.
        channel_dim: the channel axis of input and output.
        method: "forward-ad" (one forward-mode pass) or "double-vjp" (the fallback for
            operations without a forward-mode derivative).
        meta: anything else (the model's mode, non-finite values).

    Examples:
        >>> import torch
        >>> r = SpatialJacobianResult("toy", torch.tensor([[1.0, 0.5], [0.5, 0.25]]), (0, 0),
        ...                           (1, 1, 2, 2), (1, 1, 2, 2))
        >>> r.profile()
        [1.0, 0.5, 0.25]
        >>> SpatialJacobianResult.from_json(r.to_json()).source
        (0, 0)
    """

    label: str
    map: Any = field(metadata=TENSOR)
    source: tuple[int, ...] = ()
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    channel_dim: int = 1
    method: str = "forward-ad"
    meta: dict[str, Any] = field(default_factory=dict)
    csv_exclude = ("meta", "map")

    def profile(self, reduce: str = "max") -> list[float]:
        """The map reduced over the positions at each Manhattan distance from ``source``
        (index 0 is the source itself), for maps on the input's grid.

        Args:
            reduce: "max", "sum" or "mean" over the positions at each distance.
        """
        import torch

        if reduce not in ("max", "sum", "mean"):
            raise ValueError(f"reduce must be 'max', 'sum' or 'mean', got {reduce!r}")
        m = self.map
        if m.dim() != len(self.source):
            raise ValueError(f"the map has {m.dim()} axes but the source {self.source} has "
                             f"{len(self.source)}: distances are defined on the input's grid")
        grids = torch.meshgrid(*[torch.arange(n) for n in m.shape], indexing="ij")
        dist = sum((g - s).abs() for g, s in zip(grids, self.source))
        out = []
        for k in range(int(dist.max()) + 1):
            vals = m[dist == k]
            if vals.numel() == 0:
                out.append(math.nan)
            else:
                out.append(float(getattr(vals, reduce)()))
        return out
