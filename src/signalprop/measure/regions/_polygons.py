"""Batched convex polygons: P polygons as (P, V, 2) vertices (counter-clockwise, padded)
and (P,) vertex counts; clipped by half-planes all at once."""

from __future__ import annotations

import torch
from torch import Tensor


def rectangle(bounds: tuple[float, float, float, float]) -> tuple[Tensor, Tensor]:
    """The rectangle [s0, s1] x [r0, r1] as one polygon.

    Examples:
        >>> v, n = rectangle((0.0, 2.0, 0.0, 1.0))
        >>> v.shape, n.tolist(), areas(v, n).tolist()
        (torch.Size([1, 4, 2]), [4], [2.0])
    """
    s0, s1, r0, r1 = bounds
    v = torch.tensor([[[s0, r0], [s1, r0], [s1, r1], [s0, r1]]], dtype=torch.float64)
    return v, torch.tensor([4])


def valid(verts: Tensor, nv: Tensor) -> Tensor:
    """(P, V) mask of the real (not padding) vertices."""
    return torch.arange(verts.shape[1])[None] < nv[:, None]


def centroids(verts: Tensor, nv: Tensor) -> Tensor:
    """(P, 2) vertex centroids (strictly inside a non-degenerate convex polygon)."""
    w = valid(verts, nv).to(verts.dtype)
    return (verts * w[..., None]).sum(1) / nv[:, None].to(verts.dtype)


def _next(verts: Tensor, nv: Tensor) -> Tensor:
    """(P, V) index of each vertex's successor."""
    return (torch.arange(verts.shape[1])[None] + 1) % nv.clamp_min(1)[:, None]


def areas(verts: Tensor, nv: Tensor) -> Tensor:
    """(P,) polygon areas (shoelace)."""
    nxt = verts.gather(1, _next(verts, nv)[..., None].expand(-1, -1, 2))
    cross = verts[..., 0] * nxt[..., 1] - nxt[..., 0] * verts[..., 1]
    return 0.5 * (cross * valid(verts, nv)).sum(1).abs()


def affine(verts: Tensor, ref: Tensor, g: Tensor, grad: Tensor) -> Tensor:
    """(P, V) values at the vertices of f(p) = g + grad . (p - ref), per polygon."""
    return g[:, None] + ((verts - ref[:, None]) * grad[:, None]).sum(-1)


def clip(verts: Tensor, nv: Tensor, f: Tensor, tol: Tensor) -> tuple[Tensor, Tensor]:
    """The parts of the polygons where f >= 0 (f: (P, V) at the vertices, affine inside).

    Vertices with |f| <= tol (per polygon) are kept; an edge whose ends have f beyond
    +-tol on opposite sides gets its crossing point. A polygon entirely on the negative
    side comes back with fewer than 3 vertices.
    """
    P, V = f.shape
    ok = valid(verts, nv)
    nxt = _next(verts, nv)
    f_next = f.gather(1, nxt)
    v_next = verts.gather(1, nxt[..., None].expand(-1, -1, 2))
    t = tol[:, None]
    keep = ok & (f >= -t)
    cross = ok & (((f > t) & (f_next < -t)) | ((f < -t) & (f_next > t)))
    w = torch.where(cross, f / torch.where(cross, f - f_next, torch.ones_like(f)), 0.0)
    inter = verts + w[..., None] * (v_next - verts)
    cand = torch.stack([verts, inter], 2).reshape(P, 2 * V, 2)
    mask = torch.stack([keep, cross], 2).reshape(P, 2 * V)
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    n = mask.sum(1)
    width = min(max(int(n.max()) if P else 0, 3), 2 * V)  # a convex cut adds <= 1 vertex
    return cand.gather(1, order[:, :width, None].expand(-1, -1, 2)), n


def pad(verts: Tensor, width: int) -> Tensor:
    """Pad (P, V, 2) to (P, width, 2) with copies of the first vertex."""
    if verts.shape[1] >= width:
        return verts
    fill = verts[:, :1].expand(-1, width - verts.shape[1], -1)
    return torch.cat([verts, fill], 1)


def split(verts: Tensor, nv: Tensor, f: Tensor, tol: Tensor) -> tuple[Tensor, Tensor,
                                                                      Tensor, Tensor]:
    """Both sides of every polygon's cut by f = 0: (pos verts, pos counts, neg verts, neg
    counts), padded to one width."""
    pv, pn = clip(verts, nv, f, tol)
    nv_, nn_ = clip(verts, nv, -f, tol)
    width = max(pv.shape[1], nv_.shape[1])
    return pad(pv, width), pn, pad(nv_, width), nn_
