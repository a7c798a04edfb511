"""Extreme eigenvalues of the loss Hessian by Lanczos on Hessian-vector products.

H v = d/dtheta <grad_theta L, v> (Pearlmutter's trick): one backward with
``create_graph=True`` gives grad L as a differentiable function of theta, and each
product is one more backward through that graph, so the Hessian is never formed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import ModelInput, buffers_restored, forward_or_locate
from signalprop.measure._nonfinite import NonFiniteError, first_nonfinite_module
from signalprop.measure._options import check_int, check_label, check_seed
from signalprop.measure._per_example import (
    LossFn,
    batch_loss,
    batch_size,
    batchnorm_policy,
    check_loss_fn,
    check_targets,
)
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.spectra._backend import twice_differentiable
from signalprop.measure.spectra._lanczos import lanczos
from signalprop.results.spectra import HessianExtremesResult


def hessian_extremes(
    model: nn.Module,
    x: ModelInput,
    y: Any = None,
    *,
    loss_fn: LossFn | None = None,
    k: int = 2,
    steps: int | None = None,
    seed: int = 0,
    batchnorm: str = "auto",
    dropout: str = "auto",
    label: str | None = None,
) -> HessianExtremesResult:
    """Largest and smallest eigenvalues of the Hessian of ``loss_fn(model(x), y)`` with
    respect to all trainable parameters.

    The loss is the batch loss as ``loss_fn`` returns it (its own reduction); the model
    runs in its current mode (train-mode BatchNorm uses batch statistics, consistently for
    every product since one graph serves them all, unless ``batchnorm`` says otherwise) and
    its buffers are restored.

    Args:
        model: any module; the Hessian is over its parameters with ``requires_grad``.
        x: input batch (tensor, tuple or dict), non-empty.
        y: targets or None.
        loss_fn: ``loss_fn(output, y) -> scalar`` (``loss_fn(output)`` when y is None);
            required.
        k: how many eigenvalues to report at each end; Lanczos starts from a block of k
            vectors, so an eigenvalue repeated k times or more is reported k times.
        steps: Lanczos steps, i.e. Hessian-vector products, rounded up to whole blocks of
            k (default min(P, max(10k, 40)), P = number of parameters); P steps give the
            exact spectrum. Each reported value comes with a residual bound: an exact
            eigenvalue lies within it; ``largest[j]`` is a lower bound of the exact j-th
            largest eigenvalue and ``smallest[j]`` an upper bound of the j-th smallest.
        seed: seed of the start vectors.
        batchnorm: ``"auto"`` runs BatchNorm in the model's mode, ``"eval"`` on running
            statistics for the call, ``"error"`` refuses BatchNorm in train mode.
        dropout: ``"auto"`` and ``"error"`` refuse a forward that draws random numbers
            (train-mode dropout: the Hessian would be that of one random mask);
            ``"eval"`` runs every module except BatchNorm in eval mode for the call.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.HessianExtremesResult`.

    Examples:
        >>> model = nn.Linear(3, 1)
        >>> h = hessian_extremes(model, torch.randn(16, 3), torch.randn(16, 1),
        ...                      loss_fn=nn.MSELoss())
        >>> len(h.largest), h.largest[0] >= h.smallest[0]
        (2, True)

    References:
        Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 1994;
        Ghorbani, Krishnan & Xiao, "An investigation into neural net optimization via
        Hessian eigenvalue density", ICML 2019.
    """
    k, steps, seed = _check_arguments(x, y, loss_fn, k, steps, seed, label)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    dim = sum(p.numel() for p in params)
    with batchnorm_policy(model, batchnorm, False), buffers_restored(model), \
            dropout_policy(model, x, dropout, "the Hessian") as draws, \
            torch.enable_grad(), twice_differentiable():
        loss = _checked_loss(model, x, y, loss_fn)  # type: ignore[arg-type]
        draws.check()
        hvp = _hessian_vector_product(loss, params)
        block = min(k, dim)
        n_steps = steps if steps is not None else min(dim, max(10 * block, 40))
        try:
            ritz = lanczos(hvp, 1, dim, n_steps, dtype=params[0].dtype,
                           device=params[0].device, seed=seed, block=block)
        except FloatingPointError as e:
            raise NonFiniteError(f"Hessian-vector products are NaN/Inf ({e})") from e
    kk = min(k, ritz.steps)
    vals, res = ritz.values[0], ritz.residuals[0]
    out_res = HessianExtremesResult(
        label=label or type(model).__name__, dim=dim,
        largest=vals[::-1][:kk].tolist(), smallest=vals[:kk].tolist(),
        largest_residual=res[::-1][:kk].tolist(), smallest_residual=res[:kk].tolist(),
        steps=ritz.steps, loss=float(loss.detach()), block=ritz.block,
        complete=ritz.complete,
    )
    out_res.meta.update(mode="train" if model.training else "eval",
                        spectrum=np.asarray(vals).tolist() if ritz.steps <= 64 else None)
    return out_res


def _check_arguments(x: ModelInput, y: Any, loss_fn: Any, k: int, steps: int | None,
                     seed: int, label: str | None) -> tuple[Any, ...]:
    """Validate the input and options; returns k, steps and seed as Python ints."""
    check_targets(y, batch_size(x))
    check_loss_fn(loss_fn)
    check_label(label)
    return (check_int("k", k, low=1), check_int("steps", steps, low=1, none=True),
            check_seed(seed))


def _checked_loss(model: nn.Module, x: ModelInput, y: Any, loss_fn: LossFn) -> Tensor:
    """The batch loss, finite (else the error names the first non-finite module)."""
    out = forward_or_locate(model, x, [])
    loss = batch_loss(loss_fn, out, y)
    if not bool(torch.isfinite(loss)):
        where = first_nonfinite_module(model, x)
        raise NonFiniteError(f"the loss is {loss.item()}; "
                             + (f"the model output is first non-finite in module {where}"
                                if where else "the model output is finite"))
    return loss


def _hessian_vector_product(loss: Tensor, params: list[nn.Parameter]
                            ) -> Callable[[Tensor], Tensor]:
    """v (P,) -> (1, P) H v for the Hessian of ``loss`` over ``params`` (flattened in
    order); parameters the gradient does not depend on give zero rows."""
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    live = [(p, g) for p, g in zip(params, grads) if g is not None and g.requires_grad]
    sizes = [p.numel() for p in params]

    def hvp(v: Tensor) -> Tensor:
        chunks = list(torch.split(v.reshape(-1), sizes))
        out_vec = [torch.zeros_like(c) for c in chunks]
        if live:
            index = {id(p): i for i, p in enumerate(params)}
            vs = [chunks[index[id(p)]].view_as(p) for p, _ in live]
            hv = torch.autograd.grad([g for _, g in live], [p for p, _ in live], vs,
                                     retain_graph=True, allow_unused=True)
            for (p, _), h in zip(live, hv):
                if h is not None:
                    out_vec[index[id(p)]] = h.reshape(-1)
        return torch.cat(out_vec).unsqueeze(0)

    return hvp
