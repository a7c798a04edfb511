"""The length axis of a Signal Propagation Plot: block statistics as the sequence grows."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from tqdm.auto import tqdm

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    first_tensor,
    forward_or_locate,
    hooks_removed_after,
)
from signalprop.measure._discovery import BlockPlan, BlockSpec, resolve_blocks
from signalprop.measure._options import check_bool, check_label
from signalprop.measure._per_example import batchnorm_policy
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.forward import spp
from signalprop.results import LengthBlockStats, LengthSPPResult

InputMaker = Callable[[int], "ModelInput | tuple[ModelInput, Tensor | None]"]


def _pearson(mag: Tensor, count: Tensor) -> float | None:
    """Pearson correlation of token magnitudes with counts (flat float64 tensors); None if
    either is constant, the magnitudes to a relative spread of 1e-4 (a normalization
    layer's output, whose tiny epsilon effects would otherwise correlate perfectly)."""
    if float(mag.std()) <= 1e-4 * float(mag.abs().mean()):
        return None
    a, b = mag - mag.mean(), count - count.mean()
    den = float(a.norm() * b.norm())
    return float((a * b).sum()) / den if den > 0 else None


def _count_correlations(model: nn.Module, plan: BlockPlan, x: ModelInput, count: Tensor,
                        channel_dim: int) -> dict[str, float | None]:
    """Per block call, corr(||h_token||, count) over the tokens whose count is >= 0."""
    calls: Counter[str] = Counter()
    out: dict[str, float | None] = {}
    valid = count >= 0
    target = count[valid].to(torch.float64)

    def hook_for(name: str) -> Any:
        def hook(mod: nn.Module, args: Any, y: Any) -> None:
            calls[name] += 1
            key = name if calls[name] == 1 else f"{name}#{calls[name]}"
            t = first_tensor(y)
            if t is None or t.dim() < 2:
                out[key] = None
                return
            mag = t.detach().to(torch.float64).norm(dim=channel_dim)
            out[key] = _pearson(mag[valid], target) if mag.shape == count.shape else None
        return hook

    with hooks_removed_after() as handles:
        for b in plan.blocks:
            handles.append(b.module.register_forward_hook(hook_for(b.name)))
        with torch.no_grad(), buffers_restored(model):
            forward_or_locate(model, x, handles)
    return out


def _split(made: Any, length: int) -> tuple[ModelInput, Tensor | None]:
    if not isinstance(made, tuple):
        return made, None
    if len(made) != 2 or not (made[1] is None or isinstance(made[1], Tensor)):
        raise ValueError(f"make_input({length}) must return x or a pair (x, count) with count "
                         f"a tensor of per-token counts or None; got a tuple of {len(made)}")
    return made[0], made[1]


def _check_lengths(lengths: Sequence[int]) -> list[int]:
    ok = isinstance(lengths, Sequence) and len(lengths) > 0 and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in lengths)
    if not ok:
        raise ValueError(f"lengths must be a non-empty sequence of integers >= 1, got {lengths!r}")
    return sorted(set(lengths))


def length_spp(
    model: nn.Module,
    make_input: InputMaker,
    lengths: Sequence[int],
    *,
    blocks: BlockSpec = None,
    channel_dim: int = -1,
    batchnorm: str = "auto",
    dropout: str = "auto",
    label: str | None = None,
    progress: bool = False,
) -> LengthSPPResult:
    """SPP statistics of every block as functions of the sequence length, and how a token's
    output magnitude follows its count.

    For each length ``L``, ``make_input(L)`` gives the model input; :func:`signalprop.spp`
    measures every block (``avg_sq_mean``, ``avg_var``, their root mean square). If
    ``make_input`` also returns per-token counts (``(x, count)``, count shaped like a block
    output without its channel axis, e.g. (N, T); entries < 0 are ignored, such as
    padding), a second forward correlates each token's output norm over channels with its
    count (Pearson, over tokens): near 1 where a block's magnitude carries the count (sums,
    as unnormalized attention makes), near 0 where it does not, and ``None`` where every
    token has the same magnitude (to 1e-4 relative: a LayerNorm without affine removed it).

    Args:
        model: any module.
        make_input: ``L -> x`` or ``L -> (x, count)``.
        lengths: the sequence lengths to measure (integers >= 1).
        blocks: which modules (None: discovery; see :func:`signalprop.spp`).
        channel_dim: the channel axis of block outputs (-1 for (N, T, C)).
        batchnorm: as in :func:`signalprop.spp`.
        dropout: as in :func:`signalprop.spp` ("auto" keeps train-mode dropout: then the
            statistics and the correlation come from two different random passes).
        label: the result's label (default: the model's class name).
        progress: a progress bar over lengths.

    Returns:
        :class:`~signalprop.results.LengthSPPResult`, one record per (length, block call).

    Examples:
        >>> import signalprop as sp
        >>> net = sp.models.transformer(vocab_size=10, d_model=16, normalize="none",
        ...                             norm="none")
        >>> r = sp.measure.length_spp(net, lambda n: sp.data.count_batch(n, 8), [4, 64])
        >>> rms = r.curve("layers.0.attn", "rms")[1]
        >>> rms[1] > 4 * rms[0]                 # the attention sum grows with the length
        True
    """
    if not callable(make_input):
        raise ValueError(f"make_input must be a callable L -> x or L -> (x, count), got "
                         f"{type(make_input).__name__}")
    ells = _check_lengths(lengths)
    check_label(label)
    check_bool("progress", progress)
    plan = resolve_blocks(model, blocks)
    label = label or type(model).__name__
    records: list[LengthBlockStats] = []
    paths = set()
    for length in tqdm(ells, desc=label, unit="length", disable=not progress, leave=False):
        x, count = _split(make_input(length), length)
        res = spp(model, x, blocks=[b.module for b in plan.blocks], channel_dim=channel_dim,
                  batchnorm=batchnorm, dropout=dropout, label=label, progress=False)
        paths.add(res.meta.get("path", ""))
        corr: dict[str, float | None] = {}
        if count is not None:
            with batchnorm_policy(model, batchnorm, False), dropout_policy(
                    model, x, dropout, "the count correlation", one_pass=True):
                corr = _count_correlations(model, plan, x, count, channel_dim)
        for rec in res.records:
            records.append(LengthBlockStats(
                rec.name, rec.index, length, rec.avg_sq_mean, rec.avg_var,
                math.sqrt(max(rec.avg_sq_mean + rec.avg_var, 0.0)), corr.get(rec.name),
                rec.nonfinite))
    return LengthSPPResult(label, records, channel_dim=channel_dim, discovery=plan.rule,
                           meta={"lengths": ells, "mode": "train" if model.training else "eval",
                                 "path": "+".join(sorted(p for p in paths if p))})
