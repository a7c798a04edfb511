"""``depth_compress``: measure the latency of every candidate merged segment on this CPU,
score dropping activations, solve the two-stage dynamic programme within the budget,
and return a :class:`~signalprop.results.CompressionPlan`; ``apply_plan`` builds the
compressed network."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

import torch
import torch.nn as nn

from signalprop._forward import ModelInput, call_model, first_tensor
from signalprop.convert.compress._chain import Chain, build_chain
from signalprop.convert.compress._latency import (
    CLOCKS,
    LatencyCache,
    default_cache_dir,
    interleaved,
    machine_key,
    time_modules,
    timing_threads,
)
from signalprop.convert.compress._merge import apply_segments
from signalprop.convert.compress._module import to_module
from signalprop.convert.report import ConversionReport
from signalprop.results.compression import LatencyTable, span

WHAT = "depth_compress"


def _check_timing(repeats: int, threads: int, clock: str | None) -> str:
    for name, v in (("repeats", repeats), ("threads", threads)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    clock = clock or ("cpu" if threads == 1 else "wall")
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r} is not allowed; valid: {', '.join(CLOCKS)}")
    return clock


def _parts(chain: Chain, dtype: torch.dtype) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """Every candidate segment (merged convolution) and droppable activation, with the
    shape of the input it receives."""
    items = {}
    for (i, j), seg in chain.segments.items():
        conv = chain.convs[i]
        items[span(i, j)] = (to_module(seg.spec, dtype=dtype), conv.shape)
    for i, conv in enumerate(chain.convs):  # a convolution that cannot even fold: as is
        if (i, i + 1) not in chain.segments:
            items[span(i, i + 1)] = (copy.deepcopy(conv.module), conv.shape)
    for k in range(1, chain.length):
        if chain.droppable(k):
            acts = chain.acts[k]
            items[str(k)] = (nn.Sequential(*[copy.deepcopy(a.module) for a in acts]),
                             acts[0].shape)
    return items


def _end_to_end(models: dict[str, nn.Module], x: ModelInput, repeats: int, threads: int,
                clock: str) -> dict[str, list[float]]:
    fns = {k: (lambda m=m: call_model(m, x)) for k, m in models.items()}
    with timing_threads(threads), torch.no_grad():
        return interleaved(fns, repeats, clock)


def latency_table(model: nn.Module, example_input: ModelInput, *, padding: str = "exact",
                  repeats: int = 15, threads: int = 1, clock: str | None = None,
                  cache_dir: str | Path | None = None, max_span: int | None = None,
                  chain: Chain | None = None) -> LatencyTable:
    """Measure what every candidate merged segment and droppable activation of ``model``
    costs on this CPU (see :class:`~signalprop.results.LatencyTable`).

    Parts are timed side by side in rotating rounds (medians; with one thread the clock
    is CPU time, which waiting for a busy core does not inflate) and cached per machine
    under ``cache_dir`` (default ``$SIGNALPROP_CACHE`` or ``~/.cache/signalprop``; pass
    ``cache_dir=False`` for no cache). The whole network, every convolution on its own
    with BatchNorm folded, is measured end to end; ``rest`` is what the parts leave.

    Args:
        model: a convolutional network (read from one forward on ``example_input``).
        example_input: the batch the latency is for.
        padding: merge policy of the candidate segments ("exact" or "move").
        repeats: timing rounds (the median is kept).
        threads: torch threads while timing.
        clock: "cpu" (process CPU time; the default for one thread) or "wall".
        cache_dir: cache folder, or ``False`` for none.
        max_span: the most convolutions in one candidate segment (default: no limit).
        chain: the model's analysed structure, if already built (internal).

    Returns:
        The :class:`~signalprop.results.LatencyTable`.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = sp.models.plain_cnn(depth=3, width=4, in_channels=1,
        ...                           padding_mode="circular").eval()  # merges exactly
        >>> t = sp.convert.latency_table(net, torch.randn(8, 1, 8, 8), repeats=3,
        ...                              cache_dir=False)
        >>> sorted(t.segments), list(t.activations)
        (['0:1', '0:2', '0:3', '1:2', '1:3', '2:3'], ['1', '2'])
    """
    clock = _check_timing(repeats, threads, clock)
    net = copy.deepcopy(model).eval()
    if chain is None:
        chain = build_chain(net, example_input, padding=padding, what=WHAT, max_span=max_span)
    x0 = first_tensor(example_input)
    dtype = x0.dtype if x0 is not None else torch.float32
    cache = None if cache_dir is False else LatencyCache(
        Path(cache_dir or default_cache_dir()) / "latency" / f"{machine_key()}.json")
    parts = time_modules(_parts(chain, dtype), repeats=repeats, threads=threads,
                         clock=clock, dtype=dtype, cache=cache)
    folded = apply_segments(copy.deepcopy(net), chain.graph, [
        chain.segments[(i, i + 1)] for i in range(chain.length)
        if (i, i + 1) in chain.segments], ConversionReport(chain.graph.method))
    original = statistics.median(_end_to_end({"o": folded}, example_input, repeats, threads,
                                             clock)["o"])
    segs = {k: v for k, v in parts.items() if ":" in k}
    acts = {k: v for k, v in parts.items() if ":" not in k}
    base = sum(segs[span(i, i + 1)] for i in range(chain.length)) + sum(acts.values())
    return LatencyTable(chain.names(), segs, acts, original - base, original,
                        dict(chain.refused), threads, clock, str(dtype).replace("torch.", ""),
                        list(x0.shape) if x0 is not None else [], repeats)
