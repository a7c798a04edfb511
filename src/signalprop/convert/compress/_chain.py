"""A network as a chain of convolutions for the dynamic programme: positions, the
activations at each, and every segment that can merge.

Position k (1 <= k < L) lies between convolutions k and k + 1 when the second takes its
input from the first through BatchNorms, activations, no-ops and residual additions;
the activations on those paths are the position's. They can be dropped when each is a
module called once (replaced by ``nn.Identity``); an activation called as a function is
always kept. A position where the next convolution does not read the previous one (a
projection shortcut, a pooling or a reshape in between) is a cut no segment crosses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn

from signalprop._forward import ModelInput
from signalprop.convert.compress._opgraph import Op, OpGraph, forward_graph
from signalprop.convert.compress._segment import Segment, _reach, analyse_segment
from signalprop.convert.compress._spec import MergeError
from signalprop.results.compression import span


@dataclass
class Chain:
    """The convolutions of a network in order, the activations at each position, and
    the candidate segments (``segments[(i, j)]``) with reasons for those refused."""

    graph: OpGraph
    convs: list[Op]
    acts: list[list[Op]]
    cut: list[bool]
    segments: dict[tuple[int, int], Segment] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.convs)

    def droppable(self, k: int) -> bool:
        acts = self.acts[k]
        return 0 < k < self.length and bool(acts) and all(
            a.module is not None and self.graph.calls[a.name] == 1 for a in acts)

    def forced(self, k: int) -> bool:
        return bool(self.acts[k]) and not self.droppable(k)

    def names(self) -> list[str]:
        return [c.name for c in self.convs]


def _position_acts(graph: OpGraph, src: Op, dst: Op) -> list[Op] | None:
    """Activations on the paths from ``src`` to ``dst``'s input (None: no such path)."""
    start = dst.inputs[0] if dst.inputs else -1
    if start == src.index:
        return []
    if start < src.index:
        return None
    path = _reach(graph, src.index, start)
    if not path:
        return None
    return [graph.ops[i] for i in path if graph.ops[i].role == "act"]


def build_chain(model: nn.Module, x: ModelInput, *, padding: str, what: str,
                max_span: int | None = None) -> Chain:
    """The :class:`Chain` of ``model`` (eval mode) from one forward on ``x``; every
    segment of at most ``max_span`` convolutions that can merge is analysed."""
    graph = forward_graph(model, x, what)
    convs = graph.convs()
    if not convs:
        raise MergeError(f"{what}: the model ran no convolution")
    n = len(convs)
    acts: list[list[Op]] = [[] for _ in range(n + 1)]
    cut = [False] * (n + 1)
    for k in range(1, n):
        found = _position_acts(graph, convs[k - 1], convs[k])
        cut[k] = found is None
        acts[k] = found or []
    chain = Chain(graph, convs, acts, cut)
    limit = n if max_span is None else max_span
    for i in range(n):
        for j in range(i + 1, min(n, i + limit) + 1):
            if any(cut[i + 1:j]):
                break
            _candidate(chain, i, j, padding, what)
    return chain


def _candidate(chain: Chain, i: int, j: int, padding: str, what: str) -> None:
    names = [c.name for c in chain.convs[i:j]]
    try:
        chain.segments[(i, j)] = analyse_segment(chain.graph, names, padding, what)
    except MergeError as e:
        chain.refused[span(i, j)] = str(e).split(": ", 2)[-1]
