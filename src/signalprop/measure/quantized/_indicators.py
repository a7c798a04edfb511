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
from signalprop.measure._options import check_choice, check_int
from signalprop.measure._per_example import (
    LossFn,
    batch_loss,
    batch_size,
    batchnorm_policy,
    check_loss_fn,
    check_targets,
)
from signalprop.measure._stochastic import DROPOUT_MODES, dropout_policy
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
    dropout: str = "auto",
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
        dropout: random draws in the forward (train-mode dropout): ``"auto"`` keeps them,
            as a training iteration does (the gradients then change from call to call;
            ``meta["random_draws"]`` says so), ``"eval"`` runs every module except
            BatchNorm in eval mode for the call, ``"error"`` refuses them.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.EstimatorIndicatorsResult` (``.estimating_error`` and
        ``.gradient_instability`` are the sums over layers).

    Raises:
        ValueError: no binary-weight quantized layer, no loss_fn, bad chunks, a layer the
            loss does not depend on (named), random draws with ``dropout="error"``.

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
    chunks = check_int("chunks", chunks, low=1)  # type: ignore[assignment]
    step = check_int("step", step, none=True)
    check_choice("dropout", dropout, DROPOUT_MODES)
    check_targets(y, batch_size(x))
    layers = [(n, m) for n, m in quantized_layers(model) if m.weight_levels == "binary"]
    if not layers:
        raise ValueError("the model has no quantized layer with binary weights "
                         "(signalprop.nn.QuantLinear / QuantConv*d, weight_levels='binary')")
    with dropout_policy(model, x, dropout, "the gradient instability",
                        one_pass=True) as draws:
        sums, loss = _gradient_spread(model, x, y, loss_fn, chunks, batchnorm, layers)
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
                                     chunks=chunks, loss=loss,
                                     meta={"estimator_params": params,
                                           "random_draws": draws.drew})


def _gradient_spread(model: nn.Module, x: ModelInput, y: Any, loss_fn: LossFn, chunks: int,
                     batchnorm: str, layers: list[tuple[str, nn.Module]]
                     ) -> tuple[list[dict[str, Any]], float]:
    """Per weight tensor the sums over chunks of Var(|g|) and mean |g| (and the count of
    non-finite entries), and the mean loss; gradients from ``torch.autograd.grad``."""
    weights = [m.weight for _, m in layers]
    sums: list[dict[str, Any]] = [dict(var=0.0, mean=0.0, bad=0) for _ in weights]
    total = 0.0
    with hooks_removed_after() as handles, batchnorm_policy(model, batchnorm, False), \
            buffers_restored(model), torch.enable_grad():
        for xc, yc in _chunks(x, y, chunks):
            loss = batch_loss(loss_fn, forward_or_locate(model, xc, handles), yc)
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
            total += float(loss.detach())
            unused = [name for (name, _), g in zip(layers, grads) if g is None]
            if unused:
                raise ValueError(
                    f"the loss does not depend on the weights of quantized layer(s) "
                    f"{unused}: unused by the forward, or their output does not reach the "
                    "loss (e.g. a pooler outside the loss's output). Keep them in float "
                    "(quantize_modules(..., exclude=[...])) or use a loss of their output")
            for acc, g in zip(sums, grads):
                a = g.detach().to(torch.float64).abs().flatten()
                acc["bad"] += int(a.numel() - torch.isfinite(a).sum())
                acc["var"] += float(a.var()) if a.numel() > 1 else math.nan
                acc["mean"] += float(a.mean())
    return sums, total / chunks
