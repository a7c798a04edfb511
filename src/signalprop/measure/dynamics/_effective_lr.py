"""The effective learning rate of scale-invariant weights: lr / ||w||^2.

When the loss does not depend on the scale of a weight w (w feeds a BatchNorm in train
mode), its gradient is orthogonal to w and scales as 1 / ||w||, so a step of size lr
rotates w's direction by about lr / ||w||^2 times the gradient on the unit sphere (van
Laarhoven 2017; Hoffer et al. 2018). Weight decay shrinks ||w|| and so raises this rate,
which is why fixed-lr SGD with weight decay equals weight-decay-free SGD with an
exponentially growing lr (Li & Arora, ICLR 2020; ``signalprop.train`` schedule ``"exp"``).

NOTE: this reads an optimizer's state, so it is not a ``(model, x)`` measurement; it
lives in ``measure`` (it needs nothing above torch's optimizer objects), where the trainer
and users can call it as ``sp.measure.effective_lr(model, optimizer)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from signalprop._forward import ModelInput, buffers_restored, call_model, first_tensor
from signalprop.results.effective_lr import EffectiveLRResult, ParamLR

PARAMS = ("weights", "all")


def _group_momentum(group: dict) -> float:
    if "momentum" in group:
        return float(group["momentum"])
    betas = group.get("betas")
    return float(betas[0]) if betas else 0.0


def _invariance(model: nn.Module, x: ModelInput, params: list[torch.Tensor],
                tolerance: float) -> list[bool]:
    """Per parameter: is the output unchanged (within ``tolerance``, relative) when the
    parameter is doubled? (Doubling and halving are exact in floating point.)"""
    def out() -> torch.Tensor:
        y = first_tensor(call_model(model, x))
        if y is None:
            raise ValueError("the model's output holds no floating-point tensor")
        return y.detach().double()

    found = []
    with torch.no_grad(), buffers_restored(model):
        y0 = out()
        scale = float(torch.linalg.vector_norm(y0))
        for p in params:
            p.mul_(2.0)
            try:
                moved = float(torch.linalg.vector_norm(out() - y0))
            finally:
                p.div_(2.0)
            found.append(moved <= tolerance * scale)
    return found


def effective_lr(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    x: ModelInput | None = None,
    params: str = "weights",
    tolerance: float = 1e-3,
    label: str | None = None,
) -> EffectiveLRResult:
    """lr / ||w||^2 for every parameter of ``model`` that ``optimizer`` updates.

    Args:
        model: the trained module (names come from ``model.named_parameters()``).
        optimizer: any torch optimizer; each parameter's lr, momentum (Adam: beta1) and
            weight decay come from its parameter group.
        x: a batch; if given, each parameter is checked for scale invariance by doubling
            it and comparing the model's output in its current mode (train-mode
            BatchNorm makes the weights before it invariant; eval mode does not).
        params: ``"weights"`` (parameters with >= 2 dimensions) or ``"all"``.
        tolerance: the largest relative output change still counted as invariant
            (BatchNorm's eps makes the invariance inexact: a relative change of about
            eps / Var(pre-activation)).
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.EffectiveLRResult`, one record per parameter.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False),
        ...                           torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
        >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
        >>> r = sp.measure.effective_lr(net, opt, x=torch.randn(16, 4))
        >>> r.invariant_names  # the weight before BatchNorm, not the classifier
        ['0.weight']
        >>> rec = r.records[0]
        >>> round(rec.effective_lr * net[0].weight.square().sum().item(), 6)  # lr
        0.1
    """
    if params not in PARAMS:
        raise ValueError(f"params={params!r} is not allowed; valid: {', '.join(PARAMS)}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}")
    names = {id(p): n for n, p in model.named_parameters()}
    records, tensors = [], []
    for group in optimizer.param_groups:
        lr, mom = float(group["lr"]), _group_momentum(group)
        wd = float(group.get("weight_decay", 0.0))
        for p in group["params"]:
            if id(p) not in names or (params == "weights" and p.dim() < 2):
                continue
            norm2 = float(p.detach().double().square().sum())
            eff = lr / norm2 if norm2 > 0 else math.inf
            records.append(ParamLR(names[id(p)], lr, norm2, eff, mom, wd))
            tensors.append(p)
    if not records:
        raise ValueError(f"optimizer updates no {'weight' if params == 'weights' else ''} "
                         f"parameter of {type(model).__name__}")
    if x is not None:
        flags = _invariance(model, x, tensors, tolerance)
        records = [ParamLR(r.name, r.lr, r.norm2, r.effective_lr, r.momentum, r.weight_decay,
                           f) for r, f in zip(records, flags)]
    return EffectiveLRResult(records, label or type(model).__name__,
                             {"tolerance": tolerance, "checked": x is not None})
