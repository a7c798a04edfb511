"""Signal Propagation Plots (Brock, De & Smith, ICLR 2021) for any nn.Module."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from signalprop._forward import (
    ForwardError,
    ModelInput,
    buffers_restored,
    first_tensor,
    forward_or_locate,
    hooks_removed_after,
)
from signalprop.measure._discovery import Block, BlockSpec, resolve_blocks
from signalprop.measure._inputs import SingleValues, batch_size
from signalprop.measure._options import check_bool, check_int, check_label
from signalprop.measure._per_example import any_tensor, batchnorm_policy
from signalprop.measure._recorder import BlockRecorder
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.forward._fused_add import (
    fused_add_available,
    fused_sums,
    residual_add_moments,
)
from signalprop.measure.forward._moments import (
    ChannelMoments,
    _averages,
    _from_sums,
    c_kernel_available,
    channel_moments,
)
from signalprop.nn.residual import ResidualBlock
from signalprop.results import BlockStats, SPPResult


def check_channel_dim(x: ModelInput, channel_dim: int) -> int:
    """``channel_dim`` must be an int that indexes the input's axes; returned as an int."""
    try:
        channel_dim = check_int("channel_dim", channel_dim)  # type: ignore[assignment]
    except ValueError as e:
        raise ValueError(f"{e}; use 1 for (N, C, ...) or -1 for (N, ..., C)") from None
    t = first_tensor(x)
    if t is not None and t.dim() >= 2 and not -t.dim() <= channel_dim < t.dim():
        raise ValueError(
            f"channel_dim={channel_dim} is out of range for an input of shape "
            f"{tuple(t.shape)}; use 1 for (N, C, ...) or -1 for (N, ..., C)"
        )
    return channel_dim


class _Probe:
    """Puts a measuring residual add on one block, like a hook (``remove()`` takes it off).

    The block's class calls ``self.residual_add(shortcut, branch, alpha)``; an instance
    attribute of that name shadows the method for this one block while the measurement
    runs, so the layer knows nothing of the measurement.
    """

    def __init__(self, block: nn.Module, add: Any) -> None:
        self.block = block
        object.__setattr__(block, "residual_add", add)

    def remove(self) -> None:
        self.block.__dict__.pop("residual_add", None)


def _fusable(block: Block) -> bool:
    m = block.module
    return block.tap is not None and isinstance(m, ResidualBlock) and m.adds_tapped_branch()


class _SPPRecorder(BlockRecorder):
    """The forward hooks, branch taps and residual-add probes of one spp() call."""

    def __init__(self, total: int, desc: str, progress: bool, channel_dim: int) -> None:
        super().__init__(total, desc, progress)
        self.channel_dim = channel_dim
        self.records: list[BlockStats] = []
        self.branch_var: dict[str, float] = {}
        self.paths: set[str] = set()
        self.single = SingleValues(channel_dim)

    def record(self, name: str, module: nn.Module, m: ChannelMoments, res: float | None
               ) -> None:
        shown, index = self.place(name, module)
        self.records.append(BlockStats(shown, index, m.avg_sq_mean, m.avg_var, res,
                                       m.nonfinite))
        self.tick()

    def attach(self, b: Block, handles: list[Any]) -> None:
        if _fusable(b) and fused_add_available():
            handles.append(_Probe(b.module, self.residual_probe(b.name, b.module)))
            self.paths.add("fused")
            return
        handles.append(b.module.register_forward_hook(
            self.block_hook(b.name, b.module, b.tap is not None, b.residual_by_difference)))
        if b.tap is not None:
            handles.append(b.tap.register_forward_hook(self.tap_hook(b.name)))
        self.paths.add("c-hooks" if c_kernel_available() else "torch-hooks")

    def block_hook(self, name: str, module: nn.Module, has_tap: bool, by_difference: bool
                   ) -> Any:
        cdim = self.channel_dim

        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            # Runs hundreds of times per forward of a deep model: keep the common case (a
            # plain tensor output) free of generic unpacking.
            y = out if type(out) is torch.Tensor and out.is_floating_point() else first_tensor(out)
            self.call(name)
            if y is None:
                return
            self.single.note(name, y)
            m = channel_moments(y, cdim)
            res: float | None = None
            if has_tap:
                res = self.branch_var.pop(name, None)
            elif by_difference:
                inp = first_tensor(args)
                if inp is not None and inp.shape == y.shape:
                    res = channel_moments(y, cdim, subtract=inp).avg_var
            self.record(name, module, m, res)

        return hook

    def tap_hook(self, name: str) -> Any:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            self.branch_var[name] = channel_moments(out, self.channel_dim).avg_var

        return hook

    def residual_probe(self, name: str, module: nn.Module) -> Any:
        # The block's own residual add takes the statistics of the branch and of the
        # block output (which it reads and writes anyway) and records the block: no
        # forward hook, no extra pass over memory. Runs once per block per forward:
        # the common case (the C kernel took the tensors) builds no statistics objects.
        cdim = self.channel_dim

        def add(shortcut: torch.Tensor, branch: torch.Tensor, alpha: float = 1.0
                ) -> torch.Tensor:
            fused = fused_sums(shortcut, branch, alpha, cdim)
            self.call(name)
            if fused is not None:
                y, n, c, (sq_b, ss_b, sq_y, ss_y) = fused
                res, out = _averages(n, c, sq_b, ss_b), _averages(n, c, sq_y, ss_y)
                if n == 1:
                    self.single.note(name, y)
                if res is not None and out is not None:
                    shown, index = self.place(name, module)
                    self.records.append(BlockStats(shown, index, out[0], out[1], res[1], 0))
                    self.tick()
                    return y
                # the exact path for the tensor whose sums could not be used
                mb = _from_sums(n, c, sq_b, ss_b) or channel_moments(branch, cdim)
                my = _from_sums(n, c, sq_y, ss_y) or channel_moments(y, cdim)
            else:
                y, mb, my = residual_add_moments(shortcut, branch, alpha, cdim)
                self.single.note(name, y)
            self.record(name, module, my, mb.avg_var)
            return y

        return add


def spp(
    model: nn.Module,
    x: ModelInput,
    *,
    blocks: BlockSpec = None,
    channel_dim: int = 1,
    batchnorm: str = "auto",
    dropout: str = "auto",
    label: str | None = None,
    progress: bool = False,
) -> SPPResult:
    """Signal Propagation Plot statistics at each block output, in one forward pass.

    For every block (see :mod:`signalprop.measure._discovery` for how blocks are found)
    records, over channels c of the block output y:

    * ``avg_sq_mean`` = mean_c (mean y_c)^2, ``avg_var`` = mean_c var(y_c);
    * ``res_var`` = mean_c var(branch_c) for signalprop residual blocks (at the branch end,
      before any skip gain or alpha), Var(y - x) for a foreign block whose output the
      forward showed to be its input plus residual branches (``y = x + f(x)``, pre-norm
      style; the sum of the branches for a block with several), otherwise ``None`` (a
      post-norm or post-activation block, a projection shortcut, a plain layer);
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
        batchnorm: ``"auto"`` measures
            the model in its mode (BatchNorm in train mode uses batch statistics, as in
            the paper), ``"eval"`` switches BatchNorm to running statistics for the call,
            ``"error"`` refuses BatchNorm in train mode.
        dropout: ``"auto"`` measures random draws (train-mode dropout) as training sees
            them (``meta["random_draws"]`` says the forward drew, so the statistics vary
            from call to call); ``"eval"`` runs every module except BatchNorm in eval mode
            for the call; ``"error"`` refuses a forward that draws random numbers.
        label: the result's label (default: the model's class name).
        progress: show a progress bar over blocks.

    Warns:
        UserWarning: a block output holds one value per channel (a batch of one example
            and no other axis than channels): its variance is 0 by construction.

    Returns:
        :class:`SPPResult` with one :class:`BlockStats` per block call, in execution
        order (a block called twice appears as ``name`` and ``name#2``). ``meta["path"]``
        says how the statistics were taken: ``"fused"`` (inside signalprop residual
        adds), ``"c-hooks"`` (forward hooks, C kernel) or ``"torch-hooks"`` (forward
        hooks, torch reductions: the C extension is not built), joined by ``+`` when
        several ran. ``skips`` names the blocks that add a skip connection, as
        measured on the forward (see :mod:`signalprop.measure._discovery`).

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
    b = batch_size(x)
    channel_dim = check_channel_dim(x, channel_dim)
    check_label(label)
    check_bool("progress", progress)
    plan = resolve_blocks(model, blocks, x)
    label = label or type(model).__name__
    rec = _SPPRecorder(len(plan.blocks), label, progress, channel_dim)
    try:
        # the policy outermost: a refusal re-runs the forward after the hooks are gone
        with dropout_policy(model, x, dropout, "the SPP", one_pass=True) as draws, \
                hooks_removed_after() as handles, batchnorm_policy(model, batchnorm, False):
            for blk in plan.blocks:
                rec.attach(blk, handles)
            with torch.no_grad(), buffers_restored(model):
                forward_or_locate(model, x, handles)
    finally:
        rec.close()
    if not rec.records:
        raise ForwardError(f"none of the {len(plan.blocks)} blocks ran ({plan.rule})")
    rec.single.warn(b, "spp")
    t = first_tensor(x)
    t = any_tensor(x) if t is None else t  # token ids: their shape
    return SPPResult(
        label=label,
        records=rec.records,
        input_shape=tuple(t.shape) if t is not None else None,
        channel_dim=channel_dim,
        discovery=plan.rule,
        skips=plan.skips,
        meta=rec.meta(model, path="+".join(sorted(rec.paths)), random_draws=draws.drew),
    )
