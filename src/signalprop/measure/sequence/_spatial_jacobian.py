"""How far and how strongly a perturbation at one input position travels: the spatial
Jacobian map of a grid (or sequence) model from one forward-mode pass."""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
from torch import Tensor

from signalprop._forward import buffers_restored, call_model, first_tensor, locate_failure
from signalprop.measure._inputs import check_finite
from signalprop.measure._options import check_label
from signalprop.measure._per_example import batchnorm_policy
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.forward._spp import check_channel_dim
from signalprop.results import SpatialJacobianResult


def _source(x: Tensor, source: Any, channel_dim: int) -> tuple[int, ...]:
    spatial = [d for d in range(1, x.dim()) if d != channel_dim % x.dim()]
    src = (source,) if isinstance(source, int) and not isinstance(source, bool) else source
    ok = isinstance(src, (tuple, list)) and len(src) == len(spatial) and all(
        isinstance(s, int) and not isinstance(s, bool) for s in src)
    if not ok:
        raise ValueError(f"source must be {len(spatial)} integer index(es), one per spatial "
                         f"axis of the input {tuple(x.shape)} (channel_dim={channel_dim}), "
                         f"got {source!r}")
    out = []
    for s, d in zip(src, spatial):
        if not -x.shape[d] <= s < x.shape[d]:
            raise ValueError(f"source {tuple(src)} is outside the input's spatial shape "
                             f"{tuple(x.shape[d] for d in spatial)}")
        out.append(s % x.shape[d])
    return tuple(out)


def _tangent(x: Tensor, src: tuple[int, ...], channel_dim: int, direction: Tensor | None
             ) -> Tensor:
    cdim = channel_dim % x.dim()
    c = x.shape[cdim]
    d = torch.ones(c) if direction is None else torch.as_tensor(direction)
    if d.shape != (c,):
        raise ValueError(f"direction must have one entry per input channel ({c}), got shape "
                         f"{tuple(d.shape)}")
    tangent = torch.zeros_like(x)
    index: list[Any] = [slice(None)] * x.dim()
    for dim, s in zip([d for d in range(1, x.dim()) if d != cdim], src):
        index[dim] = s
    tangent[tuple(index)] = d.to(x)  # the remaining axes are (N, C)
    return tangent


def _forward_ad(model: nn.Module, x: Tensor, tangent: Tensor) -> tuple[Tensor, Tensor]:
    with fwAD.dual_level():
        with warnings.catch_warnings():
            # torch scripts its forward-AD decompositions on first use and warns about it
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated",
                                    DeprecationWarning)
            dual = fwAD.make_dual(x, tangent)
        out = first_tensor(call_model(model, dual))
        if out is None:
            raise ValueError("the model's output holds no floating-point tensor")
        primal, jvp = fwAD.unpack_dual(out)
        return primal.detach(), torch.zeros_like(primal) if jvp is None else jvp.detach()


def _double_vjp(model: nn.Module, x: Tensor, tangent: Tensor) -> tuple[Tensor, Tensor]:
    # J t = d/du <J^T u, t>: two reverse passes, for operations without forward-mode rules.
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        out = first_tensor(call_model(model, xr))
        if out is None:
            raise ValueError("the model's output holds no floating-point tensor")
        u = torch.zeros_like(out, requires_grad=True)
        (g,) = torch.autograd.grad(out, xr, u, create_graph=True, allow_unused=True)
        if g is None:
            return out.detach(), torch.zeros_like(out)
        (jvp,) = torch.autograd.grad(g, u, tangent, allow_unused=True)
    return out.detach(), torch.zeros_like(out) if jvp is None else jvp


def _no_forward_rule(e: BaseException) -> bool:
    """Whether ``e`` says an operation has no forward-mode derivative."""
    msg = str(e).lower()
    return isinstance(e, NotImplementedError) or any(
        k in msg for k in ("forward ad", "forward mode", "forward-mode", "jvp"))


def _jvp(model: nn.Module, x: Tensor, tangent: Tensor) -> tuple[Tensor, Tensor, str]:
    try:
        return (*_forward_ad(model, x, tangent), "forward-ad")
    except Exception as e:  # noqa: BLE001 -- any failure is reported or falls back
        if not _no_forward_rule(e):
            raise locate_failure(model, x, e) from e
    try:
        return (*_double_vjp(model, x, tangent), "double-vjp")
    except Exception as e:  # noqa: BLE001
        raise locate_failure(model, x, e) from e


def spatial_jacobian(
    model: nn.Module,
    x: Tensor,
    *,
    source: int | tuple[int, ...],
    channel_dim: int = 1,
    direction: Tensor | None = None,
    batchnorm: str = "auto",
    dropout: str = "auto",
    label: str | None = None,
) -> SpatialJacobianResult:
    """|d y / d x_source| over the output grid, from one forward-mode pass.

    The tangent ``t`` perturbs every input channel at position ``source`` by
    ``direction`` (default: 1 each) and nothing else; one forward-mode pass gives
    ``J t``, and the map is ``mean_n sum_c |(J t)[n, c, pos]|`` over the output
    positions ``pos``. For a model that acts on each channel separately (a depthwise
    recurrence) this is ``sum_c |dy_c[pos] / dx_c[source]|``, the summed path gains from
    ``source``; in general it is the derivative along the direction. Operations without a
    forward-mode derivative fall back to two reverse passes (``method="double-vjp"``).

    Args:
        model: any module whose output keeps spatial axes (or not: the map is then ()).
        x: floating input ``(N, C, *spatial)`` (``channel_dim=1``) or ``(N, *spatial, C)``
            (``channel_dim=-1``).
        source: the perturbed position, one index per spatial axis (an int for one).
        channel_dim: the channel axis of input and output.
        direction: (C,) weights of the input channels in the perturbation.
        batchnorm: "auto" / "error" refuse BatchNorm in train mode (batch statistics make
            one example's output depend on the others), "eval" uses running statistics.
        dropout: "auto" / "error" refuse a forward that draws random numbers (the map would
            describe one dropout mask), "eval" runs every module but BatchNorm in eval mode.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.SpatialJacobianResult`; ``.map`` has the output's
        spatial shape, ``.profile()`` reduces it by distance from ``source``.

    Examples:
        >>> import signalprop as sp
        >>> rnn = sp.nn.LinearRNN2d(2, transition=0.6)          # naive: explodes in 2-D
        >>> r = sp.spatial_jacobian(rnn, torch.zeros(1, 2, 16, 16), source=(0, 0))
        >>> r.map.shape, round(r.profile()[-1] / r.profile()[1], 1)   # far corner vs next
        (torch.Size([16, 16]), 57.2)
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 3:
        raise ValueError(f"x must be a floating tensor with a batch, a channel and at least "
                         f"one spatial axis, got {getattr(x, 'dtype', type(x).__name__)} "
                         f"{tuple(getattr(x, 'shape', ()))}")
    channel_dim = check_channel_dim(x, channel_dim)
    if channel_dim % x.dim() == 0:
        raise ValueError(f"channel_dim must index a non-batch axis of an input of shape "
                         f"{tuple(x.shape)}, got {channel_dim!r} (the batch axis)")
    check_finite(x, "x")
    check_label(label)
    src = _source(x, source, channel_dim)
    tangent = _tangent(x, src, channel_dim, direction)
    with batchnorm_policy(model, batchnorm, True), buffers_restored(model), \
            dropout_policy(model, x, dropout, "the spatial Jacobian"):
        out, jvp, method = _jvp(model, x, tangent)
    cdim = channel_dim % out.dim() if out.dim() > 1 else None
    per = jvp.abs().to(torch.float64)
    per = per.sum(cdim) if cdim not in (None, 0) else per
    grid = per.mean(0)
    return SpatialJacobianResult(
        label=label or type(model).__name__, map=grid, source=src,
        input_shape=tuple(x.shape), output_shape=tuple(out.shape), channel_dim=channel_dim,
        method=method,
        meta={"mode": "train" if model.training else "eval",
              "nonfinite": int((~torch.isfinite(jvp)).sum())})
