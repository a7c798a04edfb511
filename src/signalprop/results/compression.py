"""Depth compression results: :class:`LatencyTable` (what each candidate merged segment
costs on this machine) and :class:`CompressionPlan` (which activations to keep, which
convolutions to merge, and the predicted and measured latency).

Positions are numbered as in Kim et al. (ICML 2023): the network's convolutions
``convs[0..L-1]`` in execution order, position k between convolution k and k + 1 (0
before the first, L after the last); the segment "i:j" is convolutions i+1..j merged
into one (``convs[i:j]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signalprop.results._base import Result


def span(i: int, j: int) -> str:
    """The key of segment (i, j]: ``"i:j"``.

    Examples:
        >>> span(2, 5)
        '2:5'
    """
    return f"{i}:{j}"


@dataclass
class LatencyTable(Result):
    """Measured CPU latency of every candidate segment and activation of one network.

    Attributes:
        convs: the network's convolutions in execution order.
        segments: "i:j" -> seconds of convolutions i+1..j merged (BatchNorm folded) on the
            input they receive; only segments that can merge.
        activations: "k" -> seconds of the activation(s) at position k.
        rest: seconds of everything else (measured end to end minus the parts).
        original: seconds of the whole network, every convolution on its own with its
            BatchNorm folded (the plan that merges nothing), measured end to end.
        refused: "i:j" -> why convolutions i+1..j cannot merge (first reason found).
        threads, clock, dtype, input_shape, repeats: how it was measured.

    Examples:
        >>> t = LatencyTable(["a", "b"], {"0:1": 1e-3, "1:2": 1e-3, "0:2": 1.5e-3},
        ...                  {"1": 1e-4}, rest=2e-4, original=2.3e-3)
        >>> t.seconds(0, 2), LatencyTable.from_json(t.to_json()).activations
        (0.0015, {'1': 0.0001})
    """

    convs: list[str]
    segments: dict[str, float]
    activations: dict[str, float]
    rest: float
    original: float
    refused: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    clock: str = "cpu"
    dtype: str = "float32"
    input_shape: list[int] = field(default_factory=list)
    repeats: int = 0

    def seconds(self, i: int, j: int) -> float:
        """Latency of segment (i, j] (inf where it cannot merge)."""
        return self.segments.get(span(i, j), float("inf"))

    def csv_rows(self) -> tuple[list[str], list[list[Any]]]:
        """One row per segment (kind "segment") and per activation (kind "activation")."""
        rows: list[list[Any]] = [["segment", k, v, ""] for k, v in self.segments.items()]
        rows += [["activation", k, v, ""] for k, v in self.activations.items()]
        rows += [["refused", k, "", v] for k, v in self.refused.items()]
        return ["kind", "key", "seconds", "reason"], rows


@dataclass
class CompressionPlan(Result):
    """Which activations a depth-compressed network keeps and which convolutions it
    merges, chosen by the two-stage dynamic programme under a latency budget.

    Attributes:
        label: the model's name.
        convs: its convolutions in execution order (L of them).
        activations: per position 0..L, the activations there (module or op names).
        droppable, forced: positions whose activations may be dropped / must be kept.
        kept: the kept positions (the set A); boundaries: the merge boundaries (S, A in S).
        segments: the convolutions merged into each convolution of the result.
        dropped: the activation modules replaced by the identity.
        budget: the latency budget as a fraction of ``table.original``.
        predicted_seconds: the plan's latency by the table (parts plus rest).
        measured_seconds, measured_ratio: the compressed network measured end to end,
            and the median per-pair ratio to the original measured alongside it (None
            before measuring).
        importance: the plan's summed importance (the surrogate objective);
            importance_table: "a:b" -> I(a, b).
        padding: the merge policy ("exact" or "move"); moved: layers whose zero padding
            was moved (merges exact away from the border only).
        table: the latency table used.
        method: how the structure was read.

    Examples:
        >>> t = LatencyTable(["a", "b"], {"0:1": 1.0, "1:2": 1.0, "0:2": 1.2}, {"1": 0.1},
        ...                  rest=0.2, original=2.3)
        >>> plan = CompressionPlan("toy", ["a", "b"], [[], ["relu"], []], [1], [], [],
        ...                        [["a", "b"]], ["relu"], 0.7, 1.4, table=t)
        >>> round(plan.predicted_ratio, 3), plan.merged_depth, plan.depths
        (0.609, 1, [2])
    """

    label: str
    convs: list[str]
    activations: list[list[str]]
    droppable: list[int]
    forced: list[int]
    kept: list[int]
    segments: list[list[str]]
    dropped: list[str]
    budget: float
    predicted_seconds: float
    boundaries: list[int] = field(default_factory=list)
    measured_seconds: float | None = None
    measured_ratio: float | None = None
    importance: float = 0.0
    importance_table: dict[str, float] = field(default_factory=dict)
    padding: str = "exact"
    moved: list[str] = field(default_factory=list)
    table: LatencyTable | None = None
    method: str = ""

    @property
    def merged_depth(self) -> int:
        """Convolutions in the compressed network."""
        return len(self.segments)

    @property
    def depths(self) -> list[int]:
        """For each merged convolution, the original depth where its segment ends."""
        return [self.convs.index(s[-1]) + 1 for s in self.segments]

    @property
    def predicted_ratio(self) -> float:
        """Predicted latency over the original's (``table.original``)."""
        return self.predicted_seconds / self.table.original if self.table else float("nan")

    def baseline(self) -> CompressionPlan:
        """The plan that keeps every activation and merges nothing (BatchNorm still
        folds): the original network the latency is compared with.

        Examples:
            >>> p = CompressionPlan("toy", ["a", "b"], [[], ["r"], []], [1], [], [],
            ...                     [["a", "b"]], ["r"], 0.7, 1.0)
            >>> p.baseline().segments, p.baseline().dropped
            ([['a'], ['b']], [])
        """
        return CompressionPlan(self.label, self.convs, self.activations, self.droppable,
                               self.forced, sorted({*self.droppable, *self.forced}),
                               [[c] for c in self.convs], [], 1.0, 0.0,
                               padding=self.padding, method=self.method)

    def apply(self, model: Any, *, merge: bool = True, example_input: Any = None) -> Any:
        """The compressed copy of ``model`` (see
        :func:`signalprop.convert.apply_plan`).

        Examples:
            >>> import torch.nn as nn
            >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1)).eval()
            >>> plan = CompressionPlan("toy", ["0", "2"], [[], ["1"], []], [1], [], [],
            ...                        [["0", "2"]], ["1"], 0.7, 1.0)
            >>> plan.apply(net)
            Sequential(
              (0): Conv2d(1, 2, kernel_size=(1, 1), stride=(1, 1))
            )
        """
        from signalprop.convert.compress import apply_plan

        return apply_plan(self, model, merge=merge, example_input=example_input)

    def __str__(self) -> str:
        measured = "" if self.measured_ratio is None else \
            f", measured {self.measured_ratio:.3f}x"
        return (f"{self.label}: {len(self.convs)} -> {self.merged_depth} convolutions, "
                f"{len(self.dropped)} activations dropped, latency predicted "
                f"{self.predicted_ratio:.3f}x{measured} of the original (budget "
                f"{self.budget:g}x); importance {self.importance:.4g}")
