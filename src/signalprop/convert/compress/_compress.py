"""``depth_compress`` and ``apply_plan`` (see ``_plan`` for the latency table)."""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch.nn as nn

from signalprop._forward import ModelInput
from signalprop.convert._surgery import set_module
from signalprop.convert.compress._chain import Chain, build_chain
from signalprop.convert.compress._dp import DPSolution, solve
from signalprop.convert.compress._importance import Score, importance_table
from signalprop.convert.compress._merge import analyse_all, apply_segments, model_graph
from signalprop.convert.compress._plan import WHAT, _check_timing, _end_to_end, latency_table
from signalprop.convert.compress._spec import POLICIES
from signalprop.convert.report import ConversionReport
from signalprop.results.compression import CompressionPlan, LatencyTable


def _arrays(chain: Chain, table: LatencyTable, imp: dict[str, float]
            ) -> tuple[np.ndarray, ...]:
    n = chain.length
    seg = np.full((n + 1, n + 1), np.inf)
    for key, v in table.segments.items():
        i, j = (int(p) for p in key.split(":"))
        seg[i, j] = v
    act = np.zeros(n + 1)
    for key, v in table.activations.items():
        act[int(key)] = v
    importance = np.zeros((n + 1, n + 1))
    for key, v in imp.items():
        a, b = (int(p) for p in key.split(":"))
        importance[a, b] = v
    droppable = np.array([chain.droppable(k) for k in range(n + 1)])
    forced = np.array([chain.forced(k) for k in range(n + 1)])
    return seg, act, importance, droppable, forced


def _fastest(seg: np.ndarray, act: np.ndarray, droppable: np.ndarray, forced: np.ndarray,
             resolution: int) -> float:
    """Seconds of the fastest plan (every droppable activation dropped, best merges)."""
    finite = seg[np.isfinite(seg)].sum() + act.sum()
    sol = solve(seg, act, np.zeros_like(seg), 2 * finite + 1e-9, droppable=droppable,
                forced=forced, resolution=resolution)
    return sol.seconds if sol is not None else math.inf


def _plan(chain: Chain, sol: DPSolution, table: LatencyTable, imp: dict[str, float],
          budget: float, padding: str, label: str) -> CompressionPlan:
    n = chain.length
    cuts = [0] + sol.boundaries + [n]
    pairs = list(zip(cuts[:-1], cuts[1:]))
    segments = [chain.segments[p].convs for p in pairs if p in chain.segments]
    moved = sorted({m for p in pairs if p in chain.segments for m in chain.segments[p].spec.moved})
    dropped = [op.name for k in range(1, n) if chain.droppable(k) and k not in sol.kept
               for op in chain.acts[k]]
    return CompressionPlan(
        label, chain.names(), [[op.name for op in a] for a in chain.acts],
        [k for k in range(n + 1) if chain.droppable(k)],
        [k for k in range(n + 1) if chain.forced(k)], sol.kept, segments, dropped, budget,
        table.rest + sol.seconds, boundaries=sol.boundaries, importance=sol.importance,
        importance_table=imp, padding=padding, moved=moved, table=table,
        method=chain.graph.method)


def depth_compress(model: nn.Module, budget: float, *, example_input: ModelInput,
                   importance: Score | Mapping[str, float],
                   latency: str | LatencyTable = "measure", padding: str = "exact",
                   resolution: int = 1000, repeats: int = 15, threads: int = 1,
                   clock: str | None = None, cache_dir: str | Path | None = None,
                   max_span: int | None = None, verify: bool = True,
                   label: str | None = None) -> CompressionPlan:
    """Choose which activations to drop and which convolutions to merge so that the
    network runs within ``budget`` times its latency, losing the least importance.

    Kim, Jeong, Lee & Song (ICML 2023): replacing an activation by the identity lets the
    convolutions around it merge into one (:func:`merge_convs`); which to replace is a
    subset selection whose surrogate -- the sum of per-block importances under the sum
    of per-segment latencies -- two-stage dynamic programming solves exactly (stage 1:
    the fastest merge of the convolutions between two kept activations; stage 2: the
    kept activations, with the budget in ``resolution`` integer units). Latencies are
    measured on this CPU for every candidate merged convolution (:func:`latency_table`,
    cached); importances come from ``importance``.

    Args:
        model: a convolutional network (its structure is read from one forward).
        budget: the latency allowed, as a fraction of the network's (every convolution
            on its own, BatchNorm folded), e.g. 0.7.
        example_input: a batch as the network will see it (its latency depends on it).
        importance: ``score(model) -> float``, higher is better (e.g. minus the loss on
            a validation batch), evaluated with each block's activations replaced; or a
            mapping "a:b" -> I(a, b) for every block.
        latency: "measure", or a :class:`~signalprop.results.LatencyTable` of this model.
        padding: merge policy, "exact" or "move" (see :func:`merge_convs`).
        resolution: the budget in integer units for stage 2.
        repeats: timing rounds (see :func:`latency_table`).
        threads: torch threads while timing (one: CPU-time clock).
        clock: "cpu" or "wall" (default: "cpu" for one thread).
        cache_dir: the latency cache folder (``False``: no cache).
        max_span: the most convolutions one segment may merge (default: no limit).
        verify: build the compressed network and measure it end to end beside the
            original (``plan.measured_seconds``, ``plan.measured_ratio``).
        label: the plan's label (default: the model's class name).

    Returns:
        The :class:`~signalprop.results.CompressionPlan`; ``plan.apply(model)`` builds it.

    Raises:
        ValueError: no plan fits the budget (the message gives the fastest plan's ratio).

    Examples:
        >>> import torch, torch.nn.functional as F, signalprop as sp
        >>> net = sp.models.plain_cnn(depth=4, width=8, in_channels=1,
        ...                           padding_mode="circular").eval()
        >>> x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
        >>> score = lambda m: -F.cross_entropy(m(x), y).item()
        >>> plan = sp.convert.depth_compress(net, 0.8, example_input=x, importance=score,
        ...                                  repeats=3, cache_dir=False, verify=False)
        >>> plan.predicted_ratio <= 0.8, len(plan.convs)
        (True, 4)
        >>> small = plan.apply(net)
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not (
            0 < budget and math.isfinite(budget)):
        raise ValueError(f"budget must be a fraction of the latency > 0 (e.g. 0.7), "
                         f"got {budget!r}")
    if padding not in POLICIES:
        raise ValueError(f"padding={padding!r} is not allowed; valid: {', '.join(POLICIES)}")
    clock = _check_timing(repeats, threads, clock)
    net = copy.deepcopy(model).eval()
    chain = build_chain(net, example_input, padding=padding, what=WHAT, max_span=max_span)
    table = _table(net, example_input, latency, chain, padding, repeats, threads, clock,
                   cache_dir, max_span)
    imp = importance_table(net, chain, importance)
    seg, act, imps, droppable, forced = _arrays(chain, table, imp)
    allowed = budget * table.original - table.rest
    sol = solve(seg, act, imps, allowed, droppable=droppable, forced=forced,
                resolution=resolution) if allowed > 0 else None
    if sol is None:
        fastest = (_fastest(seg, act, droppable, forced, resolution) + table.rest) / \
            table.original
        raise ValueError(f"{WHAT}: no plan fits budget={budget:g} of {table.original:.3g} s;"
                         f" the fastest plan takes {fastest:.3f} of it")
    plan = _plan(chain, sol, table, imp, float(budget), padding,
                 label or type(model).__name__)
    if verify:
        measure_plan(plan, net, example_input, repeats=repeats, threads=threads, clock=clock)
    return plan


def _table(net: nn.Module, x: ModelInput, latency: str | LatencyTable, chain: Chain,
           padding: str, repeats: int, threads: int, clock: str,
           cache_dir: str | Path | None, max_span: int | None) -> LatencyTable:
    if isinstance(latency, LatencyTable):
        if latency.convs != chain.names():
            raise ValueError("latency: the table's convolutions differ from the model's "
                             f"({latency.convs[:3]}... vs {chain.names()[:3]}...)")
        return latency
    if latency != "measure":
        raise ValueError(f"latency must be 'measure' or a LatencyTable, got {latency!r}")
    return latency_table(net, x, padding=padding, repeats=repeats, threads=threads,
                         clock=clock, cache_dir=cache_dir, max_span=max_span, chain=chain)


def measure_plan(plan: CompressionPlan, model: nn.Module, example_input: ModelInput, *,
                 repeats: int = 15, threads: int = 1, clock: str | None = None
                 ) -> CompressionPlan:
    """Measure the compressed network beside the original (each convolution on its own,
    BatchNorm folded), interleaved: fills ``plan.measured_seconds`` and
    ``plan.measured_ratio`` (the median of per-round ratios) and returns the plan.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = sp.models.plain_cnn(depth=2, width=4, in_channels=1,
        ...                           padding_mode="circular").eval()
        >>> plan = sp.results.CompressionPlan("toy", ["features.0.0", "features.1.0"],
        ...     [[], [], []], [], [], [], [["features.0.0", "features.1.0"]], [], 1.0, 0.0)
        >>> plan = sp.convert.measure_plan(plan, net, torch.randn(4, 1, 8, 8), repeats=3)
        >>> plan.measured_ratio > 0
        True
    """
    clock = _check_timing(repeats, threads, clock)
    small = apply_plan(plan, model, example_input=example_input)
    folded = apply_plan(plan.baseline(), model, example_input=example_input)
    t = _end_to_end({"small": small, "orig": folded}, example_input, repeats, threads, clock)
    plan.measured_seconds = statistics.median(t["small"])
    plan.measured_ratio = statistics.median(a / b for a, b in zip(t["small"], t["orig"]))
    return plan


def apply_plan(plan: CompressionPlan, model: nn.Module, *, merge: bool = True,
               example_input: ModelInput | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` compressed as ``plan`` says.

    With ``merge=False`` only the dropped activations become identities: the network to
    fine-tune (as Kim et al. do) before merging it with ``plan.apply(finetuned)``.
    Otherwise each segment becomes one convolution (:func:`merge_convs`, the plan's
    padding policy) and the dropped activations outside segments become identities.

    Examples:
        >>> import torch.nn as nn, signalprop as sp
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1)).eval()
        >>> plan = sp.results.CompressionPlan("toy", ["0", "2"], [[], ["1"], []], [1], [],
        ...                                   [], [["0"], ["2"]], ["1"], 1.0, 0.0)
        >>> sp.convert.apply_plan(plan, net, merge=False)
        Sequential(
          (0): Conv2d(1, 2, kernel_size=(1, 1), stride=(1, 1))
          (1): Identity()
          (2): Conv2d(2, 2, kernel_size=(1, 1), stride=(1, 1))
        )
    """
    new = copy.deepcopy(model).eval()
    if not merge:
        for name in plan.dropped:
            new = set_module(new, name, nn.Identity())
        return new
    graph = model_graph(new, example_input, "apply_plan")
    segs = analyse_all(graph, plan.segments, plan.padding, "apply_plan")
    inside = {graph.ops[i].name for s in segs for i in s.ops}
    rest = [n for n in plan.dropped if n not in inside]
    return apply_segments(new, graph, segs, ConversionReport(graph.method), rest)
