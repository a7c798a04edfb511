"""``linear_regions``: the exact linear pieces of any piecewise-linear model along segments,
and ``region_density``: how densely they sit around data points."""

from __future__ import annotations

import math
import numbers
import time

import torch
import torch.nn as nn

from signalprop.measure._options import check_int, check_seed
from signalprop.measure.regions._inputs import as_points, check_options, model_label
from signalprop.measure.regions._lines import segments
from signalprop.measure.regions._trace import prepare
from signalprop.results.regions import RegionDensityResult, RegionsResult


def linear_regions(
    model: nn.Module,
    x: torch.Tensor,
    *,
    end: torch.Tensor,
    tol: float = 1e-11,
    chunk: int = 4096,
    check: bool = True,
    batchnorm: str = "auto",
    label: str | None = None,
) -> RegionsResult:
    """The exact linear pieces of ``model`` along the segments from ``x`` to ``end``.

    The model is followed through its torch calls; every piecewise-linear call (ReLU,
    LeakyReLU, PReLU, hard tanh / clamp / ReLU6, abs, maximum, max-pool; round / floor /
    sign as step units) is a stage. Stage by stage, each piece of a segment
    ``x + t (end - x)`` (t in [0, 1]) is split where a unit of the next stage changes
    state: on the piece the unit's input is affine in t, so the crossing is found in
    closed form (float64), not by sampling. Linear layers, convolutions, eval-mode
    BatchNorm, residual additions and reshapes pass through as affine maps. All segments
    are processed together, ``chunk`` pieces per forward.

    Args:
        model: any ``nn.Module`` built from the supported layers; other torch.nn layers
            (Tanh, GELU, LayerNorm, ...) and smooth functions are refused by name. It is
            copied and run in float64 on the CPU; the model itself is not changed.
        x: (B, ...) segment starts (one per example of a batch).
        end: (B, ...) segment ends, same shape.
        tol: breakpoints closer than ``tol`` (in units of t) to an earlier one are merged
            into it.
        chunk: pieces per forward pass.
        check: verify, with one plain forward per piece, that the model is affine on every
            piece found (catches nonlinearities hidden from the counter, such as x * x).
        batchnorm: "auto" or "error" refuse BatchNorm in train mode (its output couples
            the batch, so regions are undefined); "eval" uses running statistics.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.RegionsResult`: pieces per segment, breakpoints t,
        jump flags, output value and slope on each piece, activation-pattern ids.

    Raises:
        ValueError: unsupported layer or function (named, with the supported list), shapes
            that differ, a zero-length segment, NaN/Inf, train-mode BatchNorm or Dropout.
        NotAffineError: ``check`` found a piece where the model is not affine.

    Examples:
        >>> import torch, torch.nn as nn
        >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.tensor([[1.0], [1.0]]))
        ...     _ = net[0].bias.copy_(torch.tensor([-0.5, -1.5]))
        >>> r = linear_regions(net, torch.tensor([[0.0]]), end=torch.tensor([[2.0]]))
        >>> r.counts, r.breakpoints.tolist()
        ([3], [0.25, 0.75])
    """
    t0 = time.perf_counter()
    starts = as_points("x", x)
    ends = as_points("end", end, tuple(starts.shape))
    check_options(tol, chunk)
    lengths = torch.linalg.vector_norm((ends - starts).reshape(starts.shape[0], -1), dim=1)
    zero = torch.nonzero(lengths == 0).flatten()
    if zero.numel():
        raise ValueError(f"segment {int(zero[0])} has zero length (end equals x); every "
                         "segment needs two different points")
    twin = prepare(model, batchnorm)
    segs = segments(twin, starts, ends, tol=tol, chunk=chunk, check=check)
    B = starts.shape[0]
    counts = torch.bincount(segs.seg, minlength=B)
    first = torch.ones_like(segs.seg, dtype=torch.bool)
    first[1:] = segs.seg[1:] != segs.seg[:-1]
    fin = segs.final
    return RegionsResult(
        label=model_label(model, label), counts=counts.tolist(),
        breakpoints=segs.a[~first], jumps=fin.jump[~first].tolist(),
        values=fin.values, slopes=fin.derivs[0], patterns=fin.ids,
        lengths=lengths.tolist(), n_neurons=sum(s.units for s in fin.stages),
        stages=[f"{s.name}[{s.units}]" for s in fin.stages],
        meta={"tol": tol, "seconds": round(time.perf_counter() - t0, 4),
              "input_shape": list(starts.shape[1:])})


def region_density(
    model: nn.Module,
    x: torch.Tensor,
    *,
    n_lines: int = 4,
    length: float = 1.0,
    tol: float = 1e-11,
    chunk: int = 4096,
    check: bool = True,
    batchnorm: str = "auto",
    seed: int = 0,
    label: str | None = None,
) -> RegionDensityResult:
    """Region boundaries crossed per unit length along random lines through data points.

    For every example x_b, ``n_lines`` directions d are drawn uniformly on the sphere and
    the segment x_b - (length/2) d -> x_b + (length/2) d is counted exactly
    (:func:`linear_regions`). Hanin & Rolnick (ICML 2019) prove that at initialization the
    expected density is about proportional to the number of neurons (not exponential in
    depth); ``result.per_neuron`` is that constant. Call it again during training to see
    how the density changes.

    Args:
        model: a piecewise-linear model (see :func:`linear_regions`).
        x: (B, ...) data points.
        n_lines: lines per point (>= 1).
        length: each line's Euclidean length (> 0).
        tol: see :func:`linear_regions`.
        chunk: see :func:`linear_regions`.
        check: see :func:`linear_regions`.
        batchnorm: see :func:`linear_regions`.
        seed: seeds the directions.
        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.RegionDensityResult` (breakpoints per line, density,
        its standard error, density per neuron).

    Raises:
        ValueError: bad n_lines or length, or anything :func:`linear_regions` refuses.

    Examples:
        >>> import torch, torch.nn as nn
        >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> r = region_density(net, torch.randn(5, 2), n_lines=2, length=3.0)
        >>> len(r.counts), r.n_neurons, r.units_per_stage
        (10, 8, [8])
    """
    n_lines = check_int("n_lines", n_lines, low=1)  # type: ignore[assignment]
    if isinstance(length, (bool, str)) or not isinstance(length, numbers.Real) or not (
            0 < float(length) < math.inf):
        raise ValueError(f"length must be a finite number > 0, got {length!r}")
    length = float(length)
    pts = as_points("x", x)
    check_options(tol, chunk)
    seed = check_seed(seed)
    B = pts.shape[0]
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(B, n_lines, *pts.shape[1:], generator=gen, dtype=torch.float64)
    d = d / torch.linalg.vector_norm(d.reshape(B, n_lines, -1), dim=2).reshape(
        B, n_lines, *([1] * (pts.dim() - 1)))
    centre = pts.unsqueeze(1)
    starts = (centre - 0.5 * length * d).reshape(B * n_lines, *pts.shape[1:])
    ends = (centre + 0.5 * length * d).reshape(B * n_lines, *pts.shape[1:])
    twin = prepare(model, batchnorm)
    segs = segments(twin, starts, ends, tol=tol, chunk=chunk, check=check)
    counts = torch.bincount(segs.seg, minlength=B * n_lines) - 1
    units = [s.units for s in segs.final.stages]
    return RegionDensityResult(
        label=model_label(model, label), counts=counts.tolist(), length=float(length),
        n_points=B, n_lines=n_lines, n_neurons=sum(units), units_per_stage=units,
        meta={"seed": seed, "tol": tol})
