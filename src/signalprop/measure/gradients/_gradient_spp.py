"""Gradient propagation plots: the backward counterpart of the SPP, for any nn.Module."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    first_tensor,
    forward_or_locate,
    hooks_removed_after,
)
from signalprop.measure._discovery import BlockSpec, resolve_blocks
from signalprop.measure._inputs import SingleValues
from signalprop.measure._nonfinite import first_nonfinite_module
from signalprop.measure._options import check_bool, check_label, check_seed
from signalprop.measure._per_example import (
    LossFn,
    any_tensor,
    batch_loss,
    batch_size,
    batchnorm_policy,
    check_targets,
)
from signalprop.measure._recorder import BlockRecorder
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.forward._moments import channel_moments
from signalprop.measure.forward._spp import check_channel_dim
from signalprop.results.grad_spp import GradBlockStats, GradSPPResult


def gradient_spp(
    model: nn.Module,
    x: ModelInput,
    y: Any = None,
    *,
    loss_fn: LossFn | None = None,
    blocks: BlockSpec = None,
    channel_dim: int = 1,
    batchnorm: str = "auto",
    dropout: str = "auto",
    seed: int = 0,
    label: str | None = None,
    progress: bool = False,
) -> GradSPPResult:
    """Per-block statistics of the backward pass, in one forward and one backward.

    For every block (discovered as for :func:`signalprop.spp`) records the channel
    statistics of g = dL/d(block output) -- ``grad_avg_var`` = mean_c var(g_c) and
    ``grad_avg_sq_mean`` = mean_c (mean g_c)^2 -- and the norm of the gradient of the
    block's trainable parameters. Without labels the loss is L = <output, P> for a fixed
    Gaussian probe P ~ N(0, 1) (seeded by ``seed``), so dL/d(output) = P has unit
    variance and the statistics show how the network scales gradients on the way back;
    with ``y`` and ``loss_fn`` it is ``loss_fn(output, y)`` (``seed`` seeds the probe).

    The model runs in its current mode; buffers are restored afterwards; parameters'
    ``.grad`` are left untouched (gradients come from ``torch.autograd.grad``).

    Args:
        model: any module.
        x: input tensor (or a tuple / dict of inputs).
        y: targets, given together with ``loss_fn`` (or neither).
        loss_fn: ``loss_fn(output, y) -> scalar``.
        blocks: None to discover, or names, module types, modules or a predicate
            (``blocks=nn.Linear`` puts the points at the pre-activations of an MLP).
        channel_dim: channel axis of block outputs (1 for NCHW, -1 for (N, T, C)).
        batchnorm: ``"auto"`` runs BatchNorm in the model's mode, ``"eval"`` on running
            statistics for the call, ``"error"`` refuses BatchNorm in train mode.
        dropout: as for :func:`signalprop.spp`: ``"auto"`` keeps the random draws of a
            training step (``meta["random_draws"]``), ``"eval"`` runs every module except
            BatchNorm in eval mode for the call, ``"error"`` refuses random draws.
        seed: seed of the Gaussian probe.
        label: the result's label (default: the model's class name).
        progress: show a progress bar over blocks.

    Returns:
        :class:`~signalprop.results.GradSPPResult`; overlay a mean-field prediction with
        :func:`~signalprop.results.grad_spp.chi_prediction`.

    Examples:
        >>> net = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh())
        >>> g = gradient_spp(net, torch.randn(16, 32), blocks=nn.Linear)
        >>> [r.name for r in g.records], g.records[0].n_params
        (['0', '2'], 1056)

    References:
        Schoenholz, Gilmer, Ganguli & Sohl-Dickstein, "Deep information propagation",
        ICLR 2017; Brock, De & Smith, ICLR 2021 (the forward SPP).
    """
    if (y is None) != (loss_fn is None):
        raise ValueError("give y and loss_fn together (a labelled loss), or neither "
                         f"(the Gaussian probe loss); got y={'None' if y is None else 'a value'}"
                         f", loss_fn={'None' if loss_fn is None else 'a callable'}")
    b = batch_size(x)
    check_targets(y, b)
    channel_dim = check_channel_dim(x, channel_dim)
    seed = check_seed(seed)
    check_label(label)
    check_bool("progress", progress)
    plan = resolve_blocks(model, blocks, x)
    if isinstance(x, Tensor) and x.is_floating_point():
        x = x.detach().requires_grad_(True)  # every block on the path from x gets a gradient
    label = label or type(model).__name__
    rec = _GradRecorder(len(plan.blocks), label, progress, channel_dim)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        # the policy outermost: a refusal re-runs the forward after the hooks are gone
        with dropout_policy(model, x, dropout, "the gradient SPP", one_pass=True) as draws, \
                hooks_removed_after() as handles, batchnorm_policy(model, batchnorm, False), \
                buffers_restored(model), torch.enable_grad():
            handles += [blk.module.register_forward_hook(rec.block_hook(blk.name, blk.module))
                        for blk in plan.blocks]
            out = forward_or_locate(model, x, handles)
            loss, kind = _loss(out, y, loss_fn, seed)
            inputs = params + ([x] if isinstance(x, Tensor) and x.requires_grad else [])
            if not loss.requires_grad or not inputs:
                raise ValueError("the loss does not depend on the input or any parameter")
            grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    finally:
        rec.close()
    if not rec.stats:
        raise ValueError(f"none of the {len(plan.blocks)} blocks ran ({plan.rule})")
    rec.single.warn(b, "gradient_spp")
    by_param = {id(p): g for p, g in zip(params, grads[: len(params)])}
    records = [_record(i, r, by_param) for i, r in enumerate(rec.stats)]
    loss_value = float(loss.detach())
    meta = rec.meta(model, loss_value=loss_value, random_draws=draws.drew)
    if not math.isfinite(loss_value):
        meta["forward_nonfinite"] = first_nonfinite_module(model, x)
    t = first_tensor(x)
    t = any_tensor(x) if t is None else t  # token ids: their shape
    return GradSPPResult(label=label, records=records, loss=kind,
                         input_shape=tuple(t.shape) if t is not None else None,
                         channel_dim=channel_dim, discovery=plan.rule, meta=meta)


class _GradRecorder(BlockRecorder):
    """Forward hooks that put a gradient hook on each block output of one call."""

    def __init__(self, total: int, desc: str, progress: bool, channel_dim: int) -> None:
        super().__init__(total, desc, progress)
        self.channel_dim = channel_dim
        self.stats: list[dict[str, Any]] = []
        self.single = SingleValues(channel_dim)

    def block_hook(self, name: str, module: nn.Module) -> Any:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            k = self.call(name)
            t = first_tensor(out)
            if t is None:
                return
            shown, _ = self.place(name, module)
            stat: dict[str, Any] = {"name": shown, "module": module, "first": k == 1}
            self.stats.append(stat)
            if t.requires_grad:
                t.register_hook(self.grad_hook(stat))

        return hook

    def grad_hook(self, stat: dict[str, Any]) -> Any:
        def hook(g: Tensor) -> None:
            self.single.note(stat["name"], g)
            m = channel_moments(g, self.channel_dim)
            stat.update(sq=m.avg_sq_mean, var=m.avg_var, bad=m.nonfinite)
            self.tick()

        return hook


def _loss(out: Any, y: Any, loss_fn: LossFn | None, seed: int) -> tuple[Tensor, str]:
    if loss_fn is not None:
        return batch_loss(loss_fn, out, y), "loss_fn"
    t = first_tensor(out)
    if t is None:
        raise ValueError("the model output holds no floating-point tensor for the probe loss")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    probe = torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.dtype).to(t.device)
    return (t * probe).sum(), "probe"


def _record(i: int, rec: dict[str, Any], by_param: dict[int, Tensor | None]) -> GradBlockStats:
    norm: float | None = None
    bad = int(rec.get("bad", 0))
    n_params = 0
    if rec["first"]:
        seen: set[int] = set()
        total = 0.0
        for p in rec["module"].parameters():
            if id(p) in seen or id(p) not in by_param:
                continue
            seen.add(id(p))
            n_params += p.numel()
            g = by_param[id(p)]
            if g is not None:
                g64 = g.detach().to(torch.float64)
                bad += int(g.numel() - torch.isfinite(g64).sum())
                total += float(g64.square().sum())
        norm = math.sqrt(total) if n_params else None
    return GradBlockStats(rec["name"], i, rec.get("sq"), rec.get("var"), norm, n_params, bad)
