"""ReSTE's two indicators of a straight-through estimator, per quantized layer.

Wu et al. (ICCV 2023) judge an estimator of sign by

* the estimating error e = ||g(w) - sign(w)||_2, the distance between the estimator's
  equivalent forward g (``theory.quantized.surrogate_forward``: the identity for STE,
  sign(w)|w|^(1/o) for ReSTE) and the sign the forward pass really uses, and
* the gradient instability s = Var(|dL/dw|), the spread of the weight gradients'
  magnitudes over one iteration,

summed over the binary layers. A sharper estimator (larger o) lowers e and raises s.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import ModelInput, buffers_restored, forward_or_locate, hooks_removed_after
from signalprop.measure._per_example import (
    LossFn,
    batch_loss,
    batch_size,
    batchnorm_policy,
    check_loss_fn,
    check_targets,
)
from signalprop.nn.quantized import quantized_layers
from signalprop.nn.quantized._surrogate import resolve
from signalprop.results.quantized import EstimatorIndicatorsResult, LayerIndicators
from signalprop.theory.quantized import surrogate_forward


def _chunks(x: ModelInput, y: Any, n: int) -> list[tuple[Any, Any]]:
    if n == 1:
        return [(x, y)]
    if not isinstance(x, Tensor) or (y is not None and not isinstance(y, Tensor)):
        raise ValueError(f"chunks={n} splits tensors only; pass x (and y) as tensors or "
                         "chunks=1")
    b = x.shape[0]
    if b < n:
        raise ValueError(f"chunks={n} exceeds the batch size {b}")
    xs = x.tensor_split(n)
    ys = y.tensor_split(n) if y is not None else [None] * n
    return list(zip(xs, ys))


def estimator_indicators(
    model: nn.Module,
    x: ModelInput,
    y: Any = None,
    *,
    loss_fn: LossFn | None = None,
    chunks: int = 1,
    step: int | None = None,
    batchnorm: str = "auto",
    label: str | None = None,
) -> EstimatorIndicatorsResult:
    """Estimating error and gradient instability of every binary-weight layer on a batch.

    For each quantized layer with ``weight_levels="binary"`` (``signalprop.nn``): the
    estimating error ||g(w) - sign(w)||_2 with its weight estimator's equivalent forward g
    (for ReSTE the paper's sign(w)|w|^(1/o) at the current o), and the gradient instability
    Var(|dL/dw|) (unbiased variance over the layer's weights) of the loss on the batch --
    or the mean over ``chunks`` equal parts of it, as over that many training iterations.
    The model runs in its current mode; buffers are restored afterwards and parameters'
    ``.grad`` are left untouched (gradients come from ``torch.autograd.grad``).

    Args:
        model: a model holding quantized layers.
        x: input batch (a tensor, or a tuple / dict of inputs with ``chunks=1``).
        y: targets for ``loss_fn`` (None: ``loss_fn(output)``).
        loss_fn: ``loss_fn(output, y) -> scalar`` (required).
        chunks: average the gradient instability over this many equal parts of the batch.
        step: the training step to record with the result (for plots against steps).
        batchnorm: ``"auto"`` keeps the model's BatchNorm mode, ``"eval"`` uses running
            statistics for the call, ``"error"`` refuses BatchNorm in train mode.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.EstimatorIndicatorsResult` (``.estimating_error`` and
        ``.gradient_instability`` are the sums over layers).

    Raises:
        ValueError: no binary-weight quantized layer, no loss_fn, bad chunks.

    Examples:
        >>> from signalprop.nn import QuantLinear
        >>> net = nn.Sequential(QuantLinear(16, 16, estimator="reste"), nn.Linear(16, 3))
        >>> x, y = torch.randn(32, 16), torch.randint(0, 3, (32,))
        >>> r = estimator_indicators(net, x, y, loss_fn=nn.CrossEntropyLoss(), chunks=2)
        >>> [rec.name for rec in r.records], r.gradient_instability > 0
        (['0'], True)

    References:
        Wu, Zheng, Liu & Zheng, "Estimator meets equilibrium perspective: a rectified
        straight through estimator for binary neural networks training", ICCV 2023.
    """
    check_loss_fn(loss_fn)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ValueError(f"chunks must be an integer >= 1, got {chunks!r}")
    check_targets(y, batch_size(x))
    layers = [(n, m) for n, m in quantized_layers(model) if m.weight_levels == "binary"]
    if not layers:
        raise ValueError("the model has no quantized layer with binary weights "
                         "(signalprop.nn.QuantLinear / QuantConv*d, weight_levels='binary')")
    sums, loss = _gradient_spread(model, x, y, loss_fn, chunks, batchnorm,
                                  [m.weight for _, m in layers])
    records, params = [], {}
    for i, ((name, m), acc) in enumerate(zip(layers, sums)):
        q = m.weight_quantizer
        p = resolve(q.estimator, q.params)
        w = m.weight.detach().to(torch.float64).cpu().numpy().ravel()
        sign = np.where(w >= 0, 1.0, -1.0)
        err = float(np.linalg.norm(surrogate_forward(q.estimator, w, **p) - sign))
        records.append(LayerIndicators(name, i, q.estimator, err, acc["var"] / chunks,
                                       acc["mean"] / chunks, int(w.size), acc["bad"]))
        params[name] = p
    return EstimatorIndicatorsResult(label or type(model).__name__, records, step=step,
                                     chunks=chunks, loss=loss, meta={"estimator_params": params})


def _gradient_spread(model: nn.Module, x: ModelInput, y: Any, loss_fn: LossFn, chunks: int,
                     batchnorm: str, weights: list[Tensor]) -> tuple[list[dict[str, Any]], float]:
    """Per weight tensor the sums over chunks of Var(|g|) and mean |g| (and the count of
    non-finite entries), and the mean loss; gradients from ``torch.autograd.grad``."""
    sums: list[dict[str, Any]] = [dict(var=0.0, mean=0.0, bad=0) for _ in weights]
    total = 0.0
    with hooks_removed_after() as handles, batchnorm_policy(model, batchnorm, False), \
            buffers_restored(model), torch.enable_grad():
        for xc, yc in _chunks(x, y, chunks):
            loss = batch_loss(loss_fn, forward_or_locate(model, xc, handles), yc)
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
            total += float(loss.detach())
            for acc, g in zip(sums, grads):
                if g is None:
                    raise ValueError("the loss does not depend on every quantized layer's "
                                     "weights (is a layer unused?)")
                a = g.detach().to(torch.float64).abs().flatten()
                acc["bad"] += int(a.numel() - torch.isfinite(a).sum())
                acc["var"] += float(a.var()) if a.numel() > 1 else math.nan
                acc["mean"] += float(a.mean())
    return sums, total / chunks
