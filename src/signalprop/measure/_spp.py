"""Signal Propagation Plots (Brock, De & Smith, ICLR 2021) for any nn.Module."""

from __future__ import annotations

import collections
from typing import Any

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from signalprop.measure._discovery import BlockSpec, resolve_blocks
from signalprop.measure._forward import (
    ForwardError,
    ModelInput,
    buffers_restored,
    call_model,
    first_tensor,
    hooks_removed_after,
    locate_failure,
)
from signalprop.measure._fused_add import residual_add_moments
from signalprop.measure._moments import ChannelMoments, channel_moments
from signalprop.nn.residual import ResidualBlock
from signalprop.results import BlockStats, SPPResult


class _ProbeHandle:
    """Removes a residual-add probe from its block, like a hook handle."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def remove(self) -> None:
        self.block.__dict__.pop("_residual_probe", None)


def _fusable(block: nn.Module, has_tap: bool) -> bool:
    return has_tap and isinstance(block, ResidualBlock) and block.adds_tapped_branch()


def _check_channel_dim(x: ModelInput, channel_dim: int) -> None:
    t = first_tensor(x)
    if t is not None and t.dim() >= 2 and not -t.dim() <= channel_dim < t.dim():
        raise ValueError(
            f"channel_dim={channel_dim} is out of range for an input of shape "
            f"{tuple(t.shape)}; use 1 for (N, C, ...) or -1 for (N, ..., C)"
        )


def spp(
    model: nn.Module,
    x: ModelInput,
    blocks: BlockSpec = None,
    channel_dim: int = 1,
    *,
    label: str | None = None,
    progress: bool = False,
) -> SPPResult:
    """Signal Propagation Plot statistics at each block output, in one forward pass.

    For every block (see :mod:`signalprop.measure._discovery` for how blocks are found)
    records, over channels c of the block output y:

    * ``avg_sq_mean`` = mean_c (mean y_c)^2, ``avg_var`` = mean_c var(y_c);
    * ``res_var`` = mean_c var(branch_c) for signalprop residual blocks (at the branch end,
      before any skip gain or alpha), Var(y - x) for a foreign composite block (one with
      submodules) whose output has its input's shape, otherwise ``None``;
    * ``nonfinite``: the number of NaN/Inf values in y.

    The forward runs under ``torch.no_grad()`` in the model's current mode (train mode:
    BatchNorm uses batch statistics, as in the paper); statistics stream from forward
    hooks (float64 accumulation, nothing kept), or, for signalprop's residual blocks,
    from the block's own residual add, which then computes exactly what ``torch.add``
    would while it takes them (see ``docs/measure.md``); hooks are removed and buffers
    such as BatchNorm running statistics restored even if the forward raises.

    Args:
        model: any module.
        x: input tensor (or a tuple of positional inputs, or a dict of keyword inputs).
        blocks: None to discover blocks, or names, module types, modules or a predicate
            ``f(name, module) -> bool``.
        channel_dim: channel axis of block outputs (1 for NCHW, -1 for (N, T, C)).
        label: the result's label (default: the model's class name).
        progress: show a progress bar over blocks.

    Returns:
        :class:`SPPResult` with one :class:`BlockStats` per block call, in execution
        order (a block called twice appears as ``name`` and ``name#2``).

    Raises:
        ForwardError: the forward raised; the message names the innermost module that
            failed and the input shape it received.

    Examples:
        >>> import signalprop as sp
        >>> model = sp.models.resnetv2([2, 2], norm="nf", stem="cifar", width=0.25)
        >>> res = sp.spp(model, torch.randn(8, 3, 16, 16))
        >>> [r.name for r in res.records]
        ['stem', 'stages.0.0', 'stages.0.1', 'stages.1.0', 'stages.1.1']
    """
    _check_channel_dim(x, channel_dim)
    plan = resolve_blocks(model, blocks)
    records: list[BlockStats] = []
    branch_var: dict[str, float] = {}
    calls: collections.Counter[str] = collections.Counter()
    transitions: list[int] = []
    bar = tqdm(total=len(plan.blocks), desc=label or type(model).__name__, unit="block",
               disable=not progress, leave=False)

    def record(name: str, is_transition: bool, m: ChannelMoments, res: float | None) -> None:
        if is_transition:
            transitions.append(len(records))
        k = calls[name]
        records.append(BlockStats(name if k == 1 else f"{name}#{k}", len(records),
                                  m.avg_sq_mean, m.avg_var, res, m.nonfinite))
        bar.update()

    def block_hook(name: str, module: nn.Module, has_tap: bool, by_difference: bool) -> Any:
        is_transition = bool(getattr(module, "is_transition", False))

        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            # Runs hundreds of times per forward of a deep model: keep the common case (a
            # plain tensor output) free of generic unpacking.
            y = out if type(out) is torch.Tensor and out.is_floating_point() else first_tensor(out)
            calls[name] += 1
            if y is None:
                return
            m = channel_moments(y, channel_dim)
            res: float | None = None
            if has_tap:
                res = branch_var.pop(name, None)
            elif by_difference:
                inp = first_tensor(args)
                if inp is not None and inp.shape == y.shape:
                    res = channel_moments(y, channel_dim, subtract=inp).avg_var
            record(name, is_transition, m, res)

        return hook

    def tap_hook(name: str) -> Any:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            branch_var[name] = channel_moments(out, channel_dim).avg_var

        return hook

    def residual_probe(name: str, module: nn.Module) -> Any:
        # The block's own residual add takes the statistics of the branch and of the
        # block output (which it reads and writes anyway) and records the block: no
        # forward hook, no extra pass over memory.
        is_transition = bool(getattr(module, "is_transition", False))

        def probe(shortcut: torch.Tensor, branch: torch.Tensor, alpha: float) -> torch.Tensor:
            y, mb, my = residual_add_moments(shortcut, branch, alpha, channel_dim)
            calls[name] += 1
            record(name, is_transition, my, mb.avg_var)
            return y

        return probe

    with hooks_removed_after() as handles:
        for b in plan.blocks:
            if _fusable(b.module, b.tap is not None):
                object.__setattr__(b.module, "_residual_probe", residual_probe(b.name, b.module))
                handles.append(_ProbeHandle(b.module))
                continue
            hook = block_hook(b.name, b.module, b.tap is not None, b.residual_by_difference)
            handles.append(b.module.register_forward_hook(hook))
            if b.tap is not None:
                handles.append(b.tap.register_forward_hook(tap_hook(b.name)))
        try:
            with torch.no_grad(), buffers_restored(model):
                call_model(model, x)
        except Exception as e:
            bar.close()
            for h in handles:
                h.remove()
            handles.clear()
            raise locate_failure(model, x, e) from e
        finally:
            bar.close()
    if not records:
        raise ForwardError(f"none of the {len(plan.blocks)} blocks ran ({plan.rule})")
    t = first_tensor(x)
    return SPPResult(
        label=label or type(model).__name__,
        records=records,
        input_shape=tuple(t.shape) if t is not None else None,
        channel_dim=channel_dim,
        discovery=plan.rule,
        meta={"transitions": transitions, "mode": "train" if model.training else "eval"},
    )
