"""``plane_regions``: the exact linear regions of a 2-D slice through input space."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn as nn

from signalprop.measure.regions._inputs import as_points, check_options, model_label
from signalprop.measure.regions._plane import polygons
from signalprop.measure.regions._trace import prepare
from signalprop.results.regions import PlaneRegionsResult


def _bounds(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        b = tuple(float(v) for v in bounds)
    except (TypeError, ValueError):
        b = ()
    if len(b) != 4 or not all(math.isfinite(v) for v in b) or not (b[0] < b[1] and b[2] < b[3]):
        raise ValueError("bounds must be four finite numbers (s_min, s_max, r_min, r_max) "
                         f"with s_min < s_max and r_min < r_max, got {bounds!r}")
    return b  # type: ignore[return-value]


def _directions(u: torch.Tensor | None, v: torch.Tensor | None, shape: tuple[int, ...]
                ) -> tuple[torch.Tensor, torch.Tensor]:
    if u is None and v is None:
        if shape != (2,):
            raise ValueError(f"u and v are needed for inputs of shape {shape}; they may be "
                             "left out only for 2-D inputs (x of shape (1, 2))")
        return (torch.tensor([1.0, 0.0], dtype=torch.float64),
                torch.tensor([0.0, 1.0], dtype=torch.float64))
    if u is None or v is None:
        raise ValueError("give both u and v (or neither, for 2-D inputs)")
    u64 = as_points("u", u.unsqueeze(0) if isinstance(u, torch.Tensor) else u, (1, *shape))[0]
    v64 = as_points("v", v.unsqueeze(0) if isinstance(v, torch.Tensor) else v, (1, *shape))[0]
    nu, nv = torch.linalg.vector_norm(u64), torch.linalg.vector_norm(v64)
    cos = float((u64 * v64).sum() / (nu * nv)) if nu > 0 and nv > 0 else 1.0
    if abs(cos) > 1 - 1e-12:
        raise ValueError("u and v are parallel (or zero): they must span a plane; got "
                         f"|cos(u, v)| = {abs(cos):.3g}")
    return u64, v64


def plane_regions(
    model: nn.Module,
    x: torch.Tensor,
    *,
    u: torch.Tensor | None = None,
    v: torch.Tensor | None = None,
    bounds: Sequence[float] = (-1.0, 1.0, -1.0, 1.0),
    tol: float = 1e-9,
    chunk: int = 4096,
    check: bool = True,
    batchnorm: str = "auto",
    label: str | None = None,
) -> PlaneRegionsResult:
    """Every linear region of ``model`` on the slice ``x + s u + r v``, (s, r) in ``bounds``.

    The rectangle is cut stage by stage (as in :func:`linear_regions`): on a polygon where
    the earlier stages keep their states, each unit of the next stage is affine in (s, r),
    so its zero line cuts the polygon exactly (a max-pool window cuts it into the cells
    where each entry leads; a step unit at each threshold). Regions of a piecewise-linear
    network are convex, so each region is one convex polygon; together they tile the
    rectangle. For a network with 2-D inputs, leave ``u`` and ``v`` out: the slice is the
    input plane itself.

    Args:
        model: a piecewise-linear model (see :func:`linear_regions`).
        x: (1, ...) the slice's origin.
        u: (...) first direction (default for 2-D inputs: (1, 0)).
        v: (...) second direction, not parallel to u (default for 2-D inputs: (0, 1)).
        bounds: (s_min, s_max, r_min, r_max).
        tol: a line is taken to cut a polygon when the polygon's vertices lie further
            than ``tol`` times their largest value on both sides of it.
        chunk: polygons per forward pass.
        check: verify with one plain forward per region that the model is affine there.
        batchnorm: see :func:`linear_regions`.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.PlaneRegionsResult` (polygons in (s, r), pattern ids,
        output value and gradient per region); draw it with
        :func:`signalprop.plot.plane_regions`.

    Raises:
        ValueError: unsupported layer or function, x without a single origin, parallel u
            and v, bad bounds, train-mode BatchNorm or Dropout.

    Examples:
        >>> import torch, torch.nn as nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.eye(2))
        ...     _ = net[0].bias.zero_()
        >>> r = plane_regions(net, torch.zeros(1, 2))   # the four quadrants
        >>> r.count, sorted(r.areas)
        (4, [1.0, 1.0, 1.0, 1.0])
    """
    t0 = time.perf_counter()
    origin = as_points("x", x)
    if origin.shape[0] != 1:
        raise ValueError(f"x must hold one origin, shape (1, ...); got {tuple(origin.shape)}")
    du, dv = _directions(u, v, tuple(origin.shape[1:]))
    box = _bounds(bounds)
    check_options(tol, chunk)
    twin = prepare(model, batchnorm)
    res = polygons(twin, origin[0], du, dv, box, tol=tol, chunk=chunk, check=check)
    fin = res.final
    valid = torch.arange(res.verts.shape[1])[None] < res.nv[:, None]
    return PlaneRegionsResult(
        label=model_label(model, label), bounds=box, count=int(res.nv.shape[0]),
        vertices=res.verts[valid], sizes=res.nv.tolist(), patterns=fin.ids,
        values=fin.values, gradients=fin.derivs.permute(1, 2, 0),
        n_neurons=sum(s.units for s in fin.stages),
        stages=[f"{s.name}[{s.units}]" for s in fin.stages],
        meta={"tol": tol, "seconds": round(time.perf_counter() - t0, 4)})
