"""Exact pieces along segments: split stage by stage, then read every piece once.

Pieces are intervals [a, b] of t (segment ``start + t d``) on which stages 0..K-1 keep
their states, so stage K's boundary functions are affine in t there: g(t) = g(m) +
(t - m) g'. Each is solved in closed form (float64) for its zeros in (a, b) (a step
function: for every threshold it crosses), which splits the piece. After the last stage
the pieces are exact; adjacent pieces with identical states everywhere (from candidate
splits, e.g. max-pool pairs that never lead) are merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.measure.regions._pieces import Final, check_affine, final_pass
from signalprop.measure.regions._trace import trace
from signalprop.measure.regions._units import Boundary

_MAX_CELLS = 1 << 23  # boundary values per split batch (memory)
_MAX_THRESHOLDS = 50_000_000


@dataclass
class Segments:
    """Every piece of every segment, in (segment, t) order.

    Attributes:
        seg: (N,) segment of each piece.
        a, b: (N,) its end points in t.
        final: states, values and derivatives from the final pass.
        n_stages: piecewise-linear calls per forward.
    """

    seg: Tensor
    a: Tensor
    b: Tensor
    final: Final
    n_stages: int


def _roots(bnd: Boundary, m: Tensor, a: Tensor, b: Tensor, tol: float
           ) -> tuple[Tensor, Tensor]:
    """(piece index, t) of every state change of the split stage strictly inside a piece."""
    g, dg = bnd.g, bnd.dg[0]
    if bnd.kind == "pool":  # candidates: every pair of a window's entries crossing
        i, j = torch.triu_indices(g.shape[-1], g.shape[-1], 1)
        g = (g[..., i] - g[..., j]).reshape(g.shape[0], -1)
        dg = (dg[..., i] - dg[..., j]).reshape(g.shape[0], -1)
    if bnd.kind == "steps":
        piece, t = _step_roots(bnd.step, g, dg, m, a, b)
    else:
        with torch.no_grad():
            t = m[:, None] - g / dg  # inf / nan where dg = 0 or for padding
        piece, unit = torch.nonzero(torch.isfinite(t) & (t > a[:, None] + tol)
                                    & (t < b[:, None] - tol), as_tuple=True)
        t = t[piece, unit]
        return piece, t
    keep = (t > a[piece] + tol) & (t < b[piece] - tol)
    return piece[keep], t[keep]


def _step_roots(step: str, g: Tensor, dg: Tensor, m: Tensor, a: Tensor, b: Tensor
                ) -> tuple[Tensor, Tensor]:
    """Where z(t) = g + (t - m) dg crosses a threshold of ``step`` (round: k + 1/2;
    floor, ceil: k; trunc: k != 0; sign: 0)."""
    za, zb = g + (a - m)[:, None] * dg, g + (b - m)[:, None] * dg
    lo, hi = torch.minimum(za, zb), torch.maximum(za, zb)
    moving = dg != 0
    if step == "sign":
        piece, unit = torch.nonzero(moving & (lo < 0) & (hi > 0), as_tuple=True)
        return piece, m[piece] - g[piece, unit] / dg[piece, unit]
    off = 0.5 if step == "round" else 0.0
    first = torch.floor(lo - off) + 1
    count = torch.where(moving, (torch.ceil(hi - off) - 1 - first + 1).clamp_min(0), 0)
    total = int(count.sum())
    if total > _MAX_THRESHOLDS:
        raise ValueError(f"the {step} units cross {total} thresholds on these segments; "
                         "shorten the segments")
    piece, unit = torch.nonzero(count > 0, as_tuple=True)
    reps = count[piece, unit].to(torch.int64)
    starts = torch.cumsum(reps, 0) - reps
    k = torch.arange(total, dtype=torch.float64) - starts.repeat_interleave(reps).to(
        torch.float64)
    piece, unit = piece.repeat_interleave(reps), unit.repeat_interleave(reps)
    theta = first[piece, unit] + k + off
    t = m[piece] + (theta - g[piece, unit]) / dg[piece, unit]
    if step == "trunc":
        keep = theta != 0
        piece, t = piece[keep], t[keep]
    return piece, t


def _split(a: Tensor, b: Tensor, piece: Tensor, t: Tensor, tol: float) -> tuple[Tensor, ...]:
    """Cut pieces [a_i, b_i] at (piece, t): (parent index, new a, new b), in order.
    Cuts closer than ``tol`` to the previous cut are dropped."""
    n = a.shape[0]
    ids = torch.cat([torch.arange(n), piece, torch.arange(n)])
    ts = torch.cat([a, t, b])
    kind = torch.cat([torch.zeros(n), torch.ones(piece.shape[0]), torch.full((n,), 2.0)])
    order = torch.argsort(ts, stable=True)
    order = order[torch.argsort(ids[order], stable=True)]
    ids, ts, kind = ids[order], ts[order], kind[order]
    dup = torch.zeros_like(ids, dtype=torch.bool)
    dup[1:] = (ids[1:] == ids[:-1]) & (ts[1:] - ts[:-1] <= tol) & (kind[1:] == 1)
    ids, ts = ids[~dup], ts[~dup]
    pair = ids[1:] == ids[:-1]
    return ids[:-1][pair], ts[:-1][pair], ts[1:][pair]


def subdivide(model: nn.Module, starts: Tensor, dirs: Tensor, *, tol: float, chunk: int
              ) -> tuple[Tensor, Tensor, Tensor, int]:
    """Split [0, 1] of every segment at every state change: (seg, a, b, n_stages)."""
    seg = torch.arange(starts.shape[0])
    a = torch.zeros(starts.shape[0], dtype=torch.float64)
    b = torch.ones(starts.shape[0], dtype=torch.float64)
    stage = 0
    while True:
        parts, size, reached, s = [], chunk, False, 0
        while s < seg.shape[0]:
            sl = slice(s, min(seg.shape[0], s + size))
            m = (a[sl] + b[sl]) / 2
            d = dirs[seg[sl]]
            tracer, _ = trace(model, starts[seg[sl]] + _col(m, d) * d, d.unsqueeze(0),
                              split_at=stage)
            if tracer.boundary is None:
                break
            reached = True
            piece, t = _roots(tracer.boundary, m, a[sl], b[sl], tol)
            parent, na, nb = _split(a[sl], b[sl], piece, t, tol)
            parts.append((seg[sl][parent], na, nb))
            g = tracer.boundary.g
            per_piece = g[0].numel() * (g.shape[-1] if tracer.boundary.kind == "pool" else 1)
            size = max(1, min(chunk, _MAX_CELLS // max(1, per_piece)))
            s = sl.stop
        if not reached:
            return seg, a, b, stage
        seg, a, b = (torch.cat(x) for x in zip(*parts))
        stage += 1


def _col(m: Tensor, like: Tensor) -> Tensor:
    return m.reshape(-1, *([1] * (like.dim() - 1)))


def segments(model: nn.Module, starts: Tensor, ends: Tensor, *, tol: float, chunk: int,
             check: bool) -> Segments:
    """Every exact piece of the segments ``starts -> ends`` (float64, (B, *S) each)."""
    dirs = ends - starts
    seg, a, b, n_stages = subdivide(model, starts, dirs, tol=tol, chunk=chunk)

    def points(sl: slice) -> tuple[Tensor, Tensor]:
        m, d = (a[sl] + b[sl]) / 2, dirs[seg[sl]]
        return starts[seg[sl]] + _col(m, d) * d, d.unsqueeze(0)

    fin = final_pass(model, seg.shape[0], points, chunk)
    # merge neighbours of one segment whose states are identical everywhere
    new = fin.changed | torch.cat([torch.ones(1, dtype=torch.bool), seg[1:] != seg[:-1]])
    if not bool(new.all()):
        first = torch.nonzero(new).flatten()
        last = torch.cat([first[1:] - 1, torch.tensor([seg.shape[0] - 1])])
        mid_old = (a[first] + b[first]) / 2
        seg, a, b = seg[first], a[first], b[last]
        shift = ((a + b) / 2 - mid_old)[:, None]
        fin.values = fin.values[first] + shift * fin.derivs[0][first]
        fin.derivs = fin.derivs[:, first]
        fin.jump = fin.jump[first]
        fin.ids = [fin.ids[int(i)] for i in first]
    if check:
        def probe(sl: slice) -> tuple[Tensor, Tensor, Tensor]:
            tc, m, d = a[sl] + 0.3 * (b[sl] - a[sl]), (a[sl] + b[sl]) / 2, dirs[seg[sl]]
            slope = fin.derivs[0][sl]
            return (starts[seg[sl]] + _col(tc, d) * d,
                    fin.values[sl] + (tc - m)[:, None] * slope,
                    fin.values[sl].abs() + slope.abs() * (b[sl] - a[sl])[:, None])

        check_affine(model, seg.shape[0], probe,
                     lambda i: f"segment {int(seg[i])}, t in [{float(a[i]):.6g}, "
                               f"{float(b[i]):.6g}]", chunk)
    return Segments(seg, a, b, fin, n_stages)
