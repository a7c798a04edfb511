"""Exact regions of a 2-D slice ``origin + s u + r v``: polygons split stage by stage.

On a polygon where stages 0..K-1 keep their states, stage K's boundary functions are
affine in (s, r): g + grad . (p - c), read at the polygon's centroid c. The polygon is cut
by every zero line that crosses it (a step unit: every threshold line; a max-pool window:
into the convex cells where each entry leads). Polygons stay convex, and two neighbours
always differ in some unit's state, so after the last stage each polygon is one region.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.measure.regions import _polygons as poly
from signalprop.measure.regions._pieces import Final, check_affine, chunks, final_pass
from signalprop.measure.regions._trace import trace
from signalprop.measure.regions._units import Boundary

_CELLS = 1 << 22  # vertex values per batch when finding which polygons a unit cuts


@dataclass
class Polygons:
    """The regions of a slice: (P, V, 2) vertices (s, r), (P,) counts, the final pass."""

    verts: Tensor
    nv: Tensor
    final: Final
    n_stages: int


class _Cutter:
    """Polygons of one chunk, each remembering its parent (row of the stage's boundary)."""

    def __init__(self, verts: Tensor, nv: Tensor, ref: Tensor, tol: float) -> None:
        self.verts, self.nv, self.ref, self.tol = verts, nv, ref, tol
        self.src = torch.arange(verts.shape[0])

    def cut(self, rows: Tensor, f: Tensor) -> None:
        """Split polygons ``rows`` (indices) whose values f (len(rows), V) change sign."""
        ok = poly.valid(self.verts[rows], self.nv[rows])
        hi = torch.where(ok, f, -torch.inf).amax(1)
        lo = torch.where(ok, f, torch.inf).amin(1)
        t = self.tol * torch.maximum(hi.abs(), lo.abs())
        hit = (hi > t) & (lo < -t)
        if not bool(hit.any()):
            return
        idx = rows[hit]
        pv, pn, qv, qn = poly.split(self.verts[idx], self.nv[idx], f[hit], t[hit])
        self._replace(idx, [(pv, pn), (qv, qn)])

    def _replace(self, idx: Tensor, parts: list[tuple[Tensor, Tensor]]) -> None:
        keep = torch.ones(self.verts.shape[0], dtype=torch.bool)
        keep[idx] = False
        width = max([self.verts.shape[1]] + [v.shape[1] for v, _ in parts])
        self.verts = torch.cat([poly.pad(self.verts[keep], width)]
                               + [poly.pad(v, width) for v, _ in parts])
        self.nv = torch.cat([self.nv[keep]] + [n for _, n in parts])
        self.src = torch.cat([self.src[keep]] + [self.src[idx]] * len(parts))

    def values(self, rows: Tensor, g: Tensor, grad: Tensor) -> Tensor:
        """(len(rows), V) values at the vertices of the parents' affine functions
        (g: (P0,), grad: (P0, 2) per parent)."""
        src = self.src[rows]
        return poly.affine(self.verts[rows], self.ref[src], g[src], grad[src])


def _crossing(cutter: _Cutter, g: Tensor, grad: Tensor) -> Tensor:
    """(P0, G) whether unit j's function changes sign on parent polygon i (no child of a
    parent it does not cross can be cut by it)."""
    out = []
    P0, G = g.shape
    step = max(1, _CELLS // max(1, G * cutter.verts.shape[1]))
    for sl in chunks(P0, step):
        v, n, c = cutter.verts[sl], cutter.nv[sl], cutter.ref[sl]
        f = g[sl, None, :] + torch.einsum("pvd,pgd->pvg", v - c[:, None], grad[sl])
        ok = poly.valid(v, n)[..., None]
        hi = torch.where(ok, f, -torch.inf).amax(1)
        lo = torch.where(ok, f, torch.inf).amin(1)
        t = cutter.tol * torch.maximum(hi.abs(), lo.abs())
        out.append((hi > t) & (lo < -t))
    return torch.cat(out)


def _split_planes(cutter: _Cutter, bnd: Boundary) -> None:
    g, grad = bnd.g, bnd.dg.permute(1, 2, 0)  # (P0, G), (P0, G, 2)
    crossed = _crossing(cutter, g, grad)
    for j in torch.nonzero(crossed.any(0)).flatten().tolist():
        rows = torch.nonzero(crossed[cutter.src, j]).flatten()
        cutter.cut(rows, cutter.values(rows, g[:, j], grad[:, j]))


def _split_steps(cutter: _Cutter, bnd: Boundary) -> None:
    g, grad = bnd.g, bnd.dg.permute(1, 2, 0)
    off = 0.5 if bnd.step == "round" else 0.0
    for j in range(g.shape[1]):
        rows = torch.arange(cutter.verts.shape[0])
        f = cutter.values(rows, g[:, j], grad[:, j])
        ok = poly.valid(cutter.verts, cutter.nv)
        lo = float(torch.where(ok, f, torch.inf).min())
        hi = float(torch.where(ok, f, -torch.inf).max())
        if bnd.step == "sign":
            thetas = [0.0]
        else:
            ks = range(int(torch.floor(torch.tensor(lo - off))) + 1,
                       int(torch.ceil(torch.tensor(hi - off))))
            if len(ks) > 100_000:
                raise ValueError(f"a {bnd.step} unit crosses {len(ks)} thresholds on this "
                                 "slice; use smaller bounds")
            thetas = [k + off for k in ks if bnd.step != "trunc" or k != 0]
        for theta in thetas:
            rows = torch.arange(cutter.verts.shape[0])
            cutter.cut(rows, cutter.values(rows, g[:, j] - theta, grad[:, j]))


def _split_pool(cutter: _Cutter, bnd: Boundary) -> None:
    """Cut every polygon where no single entry of a window leads into the convex cells
    {entry k >= every other entry}."""
    g, grad = bnd.g, bnd.dg.permute(1, 2, 3, 0)  # (P0, W, K), (P0, W, K, 2)
    K = g.shape[2]
    for w in range(g.shape[1]):
        src = cutter.src
        real = torch.isfinite(g[src, w])  # (P, K): not padding
        F = g[src, w][:, None, :] + torch.einsum(
            "pvd,pkd->pvk", cutter.verts - cutter.ref[src][:, None], grad[src, w])
        ok = poly.valid(cutter.verts, cutter.nv)[..., None]
        F = torch.where(ok & real[:, None, :], F, -torch.inf)
        best = F.amax(2, keepdim=True)
        scale = torch.where(ok, best.abs(), 0.0).amax(1, keepdim=True)
        leads = ((F >= best - cutter.tol * scale) | ~ok).all(1) & real  # (P, K)
        rows = torch.nonzero(~leads.any(1)).flatten()
        if rows.numel() == 0:
            continue
        s = src[rows]
        whole = poly.areas(cutter.verts[rows], cutter.nv[rows])
        parts = []
        for k in range(K):
            v, n = cutter.verts[rows], cutter.nv[rows]
            for e in range(K):
                if e == k:
                    continue
                f = poly.affine(v, cutter.ref[s], g[s, w, k] - g[s, w, e],
                                grad[s, w, k] - grad[s, w, e])
                f = torch.where(real[rows, e][:, None], f, 1.0)  # padding never leads
                fin = torch.where(torch.isfinite(f), f.abs(), 0.0)
                v, n = poly.clip(v, n, f, cutter.tol * fin.amax(1))
            area = poly.areas(v, n)
            n = torch.where(real[rows, k] & (n >= 3) & (area > 1e-12 * whole), n, 0)
            parts.append((v, n))
        _replace_cells(cutter, rows, parts)


def _replace_cells(cutter: _Cutter, rows: Tensor, parts: list[tuple[Tensor, Tensor]]) -> None:
    keep = torch.ones(cutter.verts.shape[0], dtype=torch.bool)
    keep[rows] = False
    width = max([cutter.verts.shape[1]] + [v.shape[1] for v, _ in parts])
    verts = [poly.pad(cutter.verts[keep], width)]
    nv, src = [cutter.nv[keep]], [cutter.src[keep]]
    for v, n in parts:
        live = n >= 3
        verts.append(poly.pad(v[live], width))
        nv.append(n[live])
        src.append(cutter.src[rows][live])
    cutter.verts, cutter.nv, cutter.src = torch.cat(verts), torch.cat(nv), torch.cat(src)


def _point(origin: Tensor, u: Tensor, v: Tensor, c: Tensor) -> Tensor:
    shape = (-1,) + (1,) * (u.dim())
    return origin + c[:, 0].reshape(shape) * u + c[:, 1].reshape(shape) * v


def polygons(model: nn.Module, origin: Tensor, u: Tensor, v: Tensor,
             bounds: tuple[float, float, float, float], *, tol: float, chunk: int,
             check: bool) -> Polygons:
    """Every region of the slice, as convex polygons in (s, r) (origin: (*S); u, v: (*S))."""
    verts, nv = poly.rectangle(bounds)
    dirs = torch.stack([u, v]).unsqueeze(1)  # (2, 1, *S)
    stage = 0
    while True:
        parts, reached = [], False
        for sl in chunks(verts.shape[0], chunk):
            c = poly.centroids(verts[sl], nv[sl])
            tracer, _ = trace(model, _point(origin, u, v, c), dirs, split_at=stage)
            bnd = tracer.boundary
            if bnd is None:
                break
            reached = True
            cutter = _Cutter(verts[sl], nv[sl], c, tol)
            {"planes": _split_planes, "steps": _split_steps, "pool": _split_pool}[bnd.kind](
                cutter, bnd)
            parts.append((cutter.verts, cutter.nv))
        if not reached:
            break
        width = max(p.shape[1] for p, _ in parts)
        verts = torch.cat([poly.pad(p, width) for p, _ in parts])
        nv = torch.cat([n for _, n in parts])
        stage += 1
    cent = poly.centroids(verts, nv)
    fin = final_pass(model, verts.shape[0],
                     lambda sl: (_point(origin, u, v, cent[sl]), dirs), chunk)
    if check:
        grads = fin.derivs.permute(1, 2, 0)  # (P, out, 2)

        def probe(sl: slice) -> tuple[Tensor, Tensor, Tensor]:
            p = cent[sl] + 0.5 * (verts[sl, 0] - cent[sl])
            step = p - cent[sl]
            pred = fin.values[sl] + (grads[sl] * step[:, None]).sum(-1)
            scale = fin.values[sl].abs() + (grads[sl].abs() * step.abs()[:, None]).sum(-1)
            return _point(origin, u, v, p), pred, scale

        check_affine(model, verts.shape[0], probe,
                     lambda i: f"the region around (s, r) = {cent[i].tolist()}", chunk)
    return Polygons(verts, nv, fin, stage)
