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
from signalprop.measure._per_example import (
    LossFn,
    batch_loss,
    batch_size,
    batchnorm_policy,
    check_loss_fn,
    check_targets,
)
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
        k: how many eigenvalues to report at each end.
        steps: Lanczos steps (default min(P, max(3k, 40)), P = number of parameters);
            P steps give the exact spectrum. Each reported value comes with a residual
            bound: an exact eigenvalue lies within it.
        seed: seed of the start vector.
        batchnorm: ``"auto"`` runs BatchNorm in the model's mode, ``"eval"`` on running
            statistics for the call, ``"error"`` refuses BatchNorm in train mode.
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
    check_targets(y, batch_size(x))
    check_loss_fn(loss_fn)
    if k < 1 or (steps is not None and steps < 1):
        raise ValueError(f"k and steps must be >= 1, got k={k}, steps={steps}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    dim = sum(p.numel() for p in params)
    with batchnorm_policy(model, batchnorm, False), buffers_restored(model), \
            torch.enable_grad():
        out = forward_or_locate(model, x, [])
        loss = batch_loss(loss_fn, out, y)  # type: ignore[arg-type]
        if not bool(torch.isfinite(loss)):
            where = first_nonfinite_module(model, x)
            raise NonFiniteError(f"the loss is {loss.item()}; "
                                 + (f"the model output is first non-finite in module {where}"
                                    if where else "the model output is finite"))
        hvp = _hessian_vector_product(loss, params)
        n_steps = steps if steps is not None else min(dim, max(3 * k, 40))
        try:
            ritz = lanczos(hvp, 1, dim, n_steps, dtype=params[0].dtype,
                           device=params[0].device, seed=seed)
        except FloatingPointError as e:
            raise NonFiniteError(f"Hessian-vector products are NaN/Inf ({e})") from e
    kk = min(k, ritz.steps)
    vals, res = ritz.values[0], ritz.residuals[0]
    out_res = HessianExtremesResult(
        label=label or type(model).__name__, dim=dim,
        largest=vals[::-1][:kk].tolist(), smallest=vals[:kk].tolist(),
        largest_residual=res[::-1][:kk].tolist(), smallest_residual=res[:kk].tolist(),
        steps=ritz.steps, loss=float(loss.detach()),
    )
    out_res.meta.update(mode="train" if model.training else "eval",
                        spectrum=np.asarray(vals).tolist() if ritz.steps <= 64 else None)
    return out_res


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
