"""Piecewise-linear units on stacked rows: what each one does to value and direction rows,
the state (pattern) it is in, and where its state changes (its boundaries).

Rows come stacked in blocks, ``Z.view(rows, P, ...)``: block 0 holds the values at P
points, block k the values at the points moved by direction k. Up to the stage being
split, every unit keeps one state on each piece, read off the value block at an interior
point, so a unit is an affine map there: block k's output is value + J (Z_k - Z_0), exact
for every direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Boundary:
    """Where the units of the split stage change state, as affine functions on each piece.

    Attributes:
        kind: "planes" (state changes where some g = 0), "steps" (where g crosses a
            threshold of the step function ``step``) or "pool" (where the largest of a
            window's entries changes).
        g: (P, G) the functions at each piece's reference point (pool: (P, W, K) entries,
            -inf for padding).
        dg: (q, P, G) their change along each direction (pool: (q, P, W, K)).
        step: for "steps": round, floor, ceil, trunc or sign.
    """

    kind: str
    g: Tensor
    dg: Tensor
    step: str = ""


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def factor_unit(kind: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                Z: Tensor) -> tuple[Tensor, Tensor, Boundary]:
    """relu, leaky_relu, prelu, abs: out = Z * factor(state); state = value > 0."""
    V = Z[0]
    on = V > 0
    one = torch.ones((), dtype=V.dtype, device=V.device)
    if kind == "relu":
        factor = on.to(V.dtype)
    elif kind == "leaky_relu":
        factor = torch.where(on, one, one * float(_arg(args, kwargs, 1, "negative_slope", 0.01)))
    elif kind == "prelu":
        w = _arg(args, kwargs, 1, "weight", None)
        if w.numel() > 1 and V.dim() >= 2:
            w = w.reshape(1, -1, *([1] * (V.dim() - 2)))
        factor = torch.where(on, one, w.to(V.dtype))
    else:  # abs
        factor = torch.sign(V)
    return Z * factor, on, _planes(V, Z)


def _planes(G: Tensor, Z: Tensor, *shifts: Tensor | float | None) -> Boundary:
    P = G.shape[0]
    D = (Z[1:] - Z[0]).reshape(Z.shape[0] - 1, P, -1)
    if not shifts:
        return Boundary("planes", G.reshape(P, -1), D)
    gs = [(G - s).reshape(P, -1) for s in shifts if s is not None]
    return Boundary("planes", torch.cat(gs, 1), torch.cat([D] * len(gs), 2))


def clamp_unit(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], Z: Tensor
               ) -> tuple[Tensor, Tensor, Boundary]:
    """hardtanh, relu6, clamp, clip, clamp_min, clamp_max: three states (below, inside,
    above)."""
    base = name.rstrip("_")
    if base == "hardtanh":
        lo, hi = (_arg(args, kwargs, 1, "min_val", -1.0), _arg(args, kwargs, 2, "max_val", 1.0))
    elif base == "relu6":
        lo, hi = 0.0, 6.0
    elif base == "clamp_min":
        lo, hi = _arg(args, kwargs, 1, "min", None), None
    elif base == "clamp_max":
        lo, hi = None, _arg(args, kwargs, 1, "max", None)
    else:
        lo, hi = _arg(args, kwargs, 1, "min", None), _arg(args, kwargs, 2, "max", None)
    V = Z[0]
    below = V < lo if lo is not None else torch.zeros_like(V, dtype=torch.bool)
    above = V > hi if hi is not None else torch.zeros_like(V, dtype=torch.bool)
    inside = ~(below | above)
    out_v = torch.clamp(V, lo, hi)
    state = inside.to(torch.int64) + 2 * above.to(torch.int64)
    return out_v + inside * (Z - V), state, _planes(V, Z, lo, hi)


def maximum_unit(name: str, a: Tensor, b: Any, stacked_b: bool, rows: int
                 ) -> tuple[Tensor, Tensor, Boundary]:
    """maximum / minimum of a stacked tensor and another (stacked or constant)."""
    A = a.reshape(rows, -1, *a.shape[1:])
    B = b.reshape(rows, -1, *b.shape[1:]) if stacked_b else b
    VB = B[0] if stacked_b else B
    take_a = A[0] >= VB if name in ("maximum", "fmax", "max") else A[0] <= VB
    out = torch.where(take_a, A, B)
    diff = A - B if stacked_b else A - b
    return out, take_a, _planes(diff[0], diff)


def pool_unit(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], Z: Tensor
              ) -> tuple[Tensor, Tensor, Boundary, Tensor]:
    """max_pool{1,2,3}d: the state of a window is the position of its largest entry."""
    d = int(next(c for c in name if c.isdigit()))
    V = Z[0]
    if V.dim() != d + 2:
        raise ValueError(f"{name} on an unbatched input is not supported")
    k = _tuple(_arg(args, kwargs, 1, "kernel_size", None), d)
    s = _tuple(_arg(args, kwargs, 2, "stride", None) or k, d)
    p = _tuple(_arg(args, kwargs, 3, "padding", 0), d)
    dil = _tuple(_arg(args, kwargs, 4, "dilation", 1), d)
    ceil = bool(_arg(args, kwargs, 5, "ceil_mode", False))
    pool = getattr(F, f"max_pool{d}d")
    out_v, idx = pool(V, k, s, p, dil, ceil, return_indices=True)
    rows, P, C = Z.shape[0], V.shape[0], V.shape[1]
    flat = idx.reshape(1, P, C, -1).expand(rows, -1, -1, -1)
    out = Z.reshape(rows, P, C, -1).gather(3, flat).reshape(rows, *out_v.shape)
    sizes = out_v.shape[2:]
    g = _windows(V, k, s, p, dil, sizes, float("-inf"))
    dg = _windows((Z[1:] - V).reshape(-1, *V.shape[1:]), k, s, p, dil, sizes, 0.0)
    bnd = Boundary("pool", g, dg.reshape(rows - 1, *g.shape))
    return out, idx.reshape(P, -1), bnd, idx


def _tuple(v: Any, d: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * d
    return tuple(int(x) for x in v)


def _windows(X: Tensor, k: tuple[int, ...], s: tuple[int, ...], p: tuple[int, ...],
             dil: tuple[int, ...], sizes: Any, fill: float) -> Tensor:
    """(N, C, *S) -> (N, C * prod(out), prod(k)): the entries of every pooling window."""
    d = len(k)
    pads: list[int] = []
    for i in reversed(range(d)):  # F.pad lists the last dimension first
        span = (sizes[i] - 1) * s[i] + dil[i] * (k[i] - 1) + 1
        extra = max(0, span - (X.shape[2 + i] + 2 * p[i]))
        pads += [p[i], p[i] + extra]
    X = F.pad(X, pads, value=fill)
    for i in range(d):
        X = X.unfold(2 + i, dil[i] * (k[i] - 1) + 1, s[i])[..., ::dil[i]]
        X = X[(slice(None),) * (2 + i) + (slice(0, sizes[i]),)]
    N, C = X.shape[:2]
    return X.reshape(N, C * int(torch.tensor(sizes).prod()), -1)


def step_unit(name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], Z: Tensor
              ) -> tuple[Tensor, Tensor, Boundary]:
    """round, floor, ceil, trunc, sign: constant between thresholds, so the output jumps
    where the state (the step's value) changes."""
    if kwargs.get("decimals", 0) or (len(args) > 1 and args[1]):
        raise ValueError(f"{name} with decimals is not supported")
    V = Z[0]
    out_v = func(V.clone()) if name.endswith("_") else func(V)
    base = name.rstrip("_")
    state = out_v.clamp(-2.0 ** 62, 2.0 ** 62).to(torch.int64)
    step = "trunc" if base == "fix" else base
    bnd = _planes(V, Z)
    return out_v.expand(Z.shape[0], *out_v.shape), state, Boundary("steps", bnd.g, bnd.dg, step)
