"""Singular values of per-example input-output Jacobians from JVPs and VJPs only.

For a model that treats examples independently, one batched vector-Jacobian product
(VJP) gives J_b^T u_b for every example b and one batched Jacobian-vector product (JVP)
gives J_b v_b (by differentiating the VJP, which is linear in u, once more: this reuses one
autograd graph for every product and works for any op with a differentiable backward), so
Lanczos runs on all B operators J_b J_b^T (when out <= in) or J_b^T J_b (otherwise) in
lockstep: the full Jacobian is never formed. Its eigenvalues are
the squared singular values. The mean squared singular value tr(J J^T) / min(in, out) is
exact (one VJP or JVP per basis vector of the smaller side) when that side has at most
``probes`` dimensions, and otherwise a Hutchinson estimate E_z |J^T z|^2 over ``probes``
Rademacher vectors z, with its standard error std / sqrt(probes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import buffers_restored, first_tensor, forward_or_locate
from signalprop.measure._nonfinite import NonFiniteError, first_nonfinite_module
from signalprop.measure._options import check_int, check_label, check_seed
from signalprop.measure._per_example import batch_size, batchnorm_policy
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.spectra._backend import twice_differentiable
from signalprop.measure.spectra._lanczos import lanczos
from signalprop.results.spectra import JacobianSpectrumResult


def jacobian_spectrum(
    model: nn.Module,
    x: Tensor,
    *,
    k: int = 8,
    steps: int | None = None,
    probes: int = 32,
    seed: int = 0,
    batchnorm: str = "auto",
    dropout: str = "auto",
    label: str | None = None,
) -> JacobianSpectrumResult:
    """Top and bottom singular values and the mean squared singular value of each example's
    input-output Jacobian J_b = d model(x)_b / d x_b (dynamical isometry: all near 1).

    Args:
        model: a module that treats examples independently (train-mode BatchNorm is refused
            unless ``batchnorm="eval"``; random draws such as train-mode dropout are refused
            unless ``dropout="eval"``). Attention runs on torch's math backend, which has
            the second derivatives the products need.
        x: (B, ...) floating-point input, B >= 1, finite; the first floating tensor of the
            output is differentiated, flattened per example.
        k: how many of the largest and of the smallest singular values to report (at most
            min(in, out)); Lanczos starts from a block of k vectors, so a singular value
            repeated k times or more is reported k times.
        steps: Lanczos steps, i.e. products per example, rounded up to whole blocks of k
            (default min(min(in, out), max(10k, 40))); min(in, out) steps give exact
            values.
        probes: Hutchinson probe vectors for the trace (exact when min(in, out) <= probes).
        seed: seed of the start and probe vectors.
        batchnorm: ``"auto"`` and ``"error"`` refuse BatchNorm in train mode (it couples
            the examples); ``"eval"`` uses running statistics for the call.
        dropout: ``"auto"`` and ``"error"`` refuse a forward that draws random numbers;
            ``"eval"`` runs every module except BatchNorm in eval mode for the call.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.JacobianSpectrumResult`. Its guarantees: ``bottom[j]``
        is an upper bound of the exact j-th smallest singular value and ``top[j]`` a lower
        bound of the j-th largest (interlacing); an exact squared singular value lies
        within the residual of each squared value; ``complete`` means the values are exact.

    Examples:
        >>> lin = nn.Linear(4, 4, bias=False)
        >>> _ = nn.init.orthogonal_(lin.weight)  # an isometry: every singular value is 1
        >>> s = jacobian_spectrum(lin, torch.randn(2, 4), k=2)
        >>> [round(v, 4) for v in s.top[0] + s.bottom[0]], round(s.mean_sq_sv[1], 4)
        ([1.0, 1.0, 1.0, 1.0], 1.0)

    References:
        Pennington, Schoenholz & Ganguli, "Resurrecting the sigmoid in deep learning
        through dynamical isometry", NeurIPS 2017; Lanczos (1950); Hutchinson (1990).
    """
    b, k, steps, probes, seed = _check_arguments(x, k, steps, probes, seed, label)
    with batchnorm_policy(model, batchnorm), buffers_restored(model), _frozen(model), \
            dropout_policy(model, x, dropout, "the Jacobian spectrum") as draws, \
            torch.enable_grad(), twice_differentiable():
        xr = x.detach().requires_grad_(True)
        out = _checked_output(model, xr, b)
        draws.check()
        n, m = x[0].numel(), out[0].numel()
        vjp, j = _jacobian_products(out, xr)
        d = min(m, n)
        op = (lambda u: j(vjp(u))) if m <= n else (lambda v: vjp(j(v)))
        block = min(k, d)
        n_steps = steps if steps is not None else min(d, max(10 * block, 40))
        ritz = lanczos(op, b, d, n_steps, dtype=x.dtype, device=x.device, seed=seed,
                       block=block)
        trace, se, exact, used = _trace(vjp if m <= n else j, b, d, probes, x, seed)
    kk = min(k, ritz.steps)
    vals = np.sqrt(np.clip(ritz.values, 0.0, None))
    res = JacobianSpectrumResult(
        label=label or type(model).__name__, in_dim=n, out_dim=m,
        top=vals[:, ::-1][:, :kk].tolist(), bottom=vals[:, :kk].tolist(),
        top_residual=ritz.residuals[:, ::-1][:, :kk].tolist(),
        bottom_residual=ritz.residuals[:, :kk].tolist(),
        mean_sq_sv=(trace / d).tolist(), mean_sq_sv_se=(se / d).tolist(),
        trace_probes=used, exact_trace=exact, steps=ritz.steps, block=ritz.block,
        complete=ritz.complete,
    )
    res.meta.update(mode="train" if model.training else "eval")
    return res


def _check_arguments(x: Tensor, k: int, steps: int | None, probes: int, seed: int,
                     label: str | None) -> tuple[Any, ...]:
    """Validate the options; returns the batch size and the options as Python ints."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor (B, ...), got "
                         f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}")
    b = batch_size(x)
    check_label(label)
    return (b, check_int("k", k, low=1), check_int("steps", steps, low=1, none=True),
            check_int("probes", probes, low=1), check_seed(seed))


Fn = Callable[[Tensor], Tensor]


def _checked_output(model: nn.Module, xr: Tensor, b: int) -> Tensor:
    """The first floating tensor of ``model(xr)``: batch-first, finite, dependent on ``xr``."""
    out = first_tensor(forward_or_locate(model, xr, []))
    if out is None or out.dim() == 0 or out.shape[0] != b:
        shape = None if out is None else tuple(out.shape)
        raise ValueError(f"the model output {shape} must be a floating tensor whose first "
                         f"axis is the batch ({b})")
    if not bool(torch.isfinite(out).all()):
        where = first_nonfinite_module(model, xr.detach())
        raise NonFiniteError(f"the model output holds NaN/Inf (first in module {where})")
    if not out.requires_grad:
        raise ValueError("the model output does not depend on x")
    return out


def _jacobian_products(out: Tensor, xr: Tensor) -> tuple[Fn, Fn]:
    """``(vjp, j)``: batched u -> J^T u (B, in) and v -> J v (B, out), per example."""
    b, n, m = out.shape[0], xr[0].numel(), out[0].numel()
    # J^T u as a differentiable, linear function of u: differentiating it once more
    # with respect to u gives J v (the double-VJP trick); one graph serves all products
    u0 = torch.zeros_like(out, requires_grad=True)
    jt_u0 = torch.autograd.grad(out, xr, u0, create_graph=True)[0]

    def vjp(u: Tensor) -> Tensor:
        g = torch.autograd.grad(out, xr, u.reshape(out.shape), retain_graph=True)[0]
        return g.reshape(b, n)

    def j(v: Tensor) -> Tensor:
        g = torch.autograd.grad(jt_u0, u0, v.reshape(xr.shape), retain_graph=True,
                                allow_unused=True)[0]
        return (torch.zeros_like(out) if g is None else g).reshape(b, m)

    return vjp, j


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad for the duration: only input derivatives are taken,
    so autograd keeps nothing for weight gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _trace(apply: Fn, b: int, d: int, probes: int, x: Tensor,
           seed: int) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """tr(J J^T) per example: sum_i |apply(e_i)|^2 over a basis, or Hutchinson."""
    if d <= probes:
        total = torch.zeros(b, dtype=torch.float64)
        for i in range(d):
            e = torch.zeros(b, d, dtype=x.dtype, device=x.device)
            e[:, i] = 1.0
            total += apply(e).to(torch.float64).square().sum(dim=1).cpu()
        return total.numpy(), np.zeros(b), True, d
    gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    samples = np.empty((probes, b))
    for p in range(probes):
        z = (torch.randint(0, 2, (b, d), generator=gen) * 2 - 1).to(x.dtype).to(x.device)
        samples[p] = apply(z).to(torch.float64).square().sum(dim=1).cpu().numpy()
    se = samples.std(axis=0, ddof=1) / math.sqrt(probes)
    return samples.mean(axis=0), se, False, probes
