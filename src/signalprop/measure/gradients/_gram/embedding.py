"""Gram contribution of ``nn.Embedding``: rows of the table are gathered, so example i's
gradient is G_i = sum_t onehot(idx_it) g_it^T and

    <G_i, G_j> = sum_{t,s} [idx_it == idx_js] <g_it, g_js>                (factorized)

or, materialized on the tokens U present in the batch only (never the whole table),
G_i[u] = sum_{t: idx_it = u} g_it and <G_i, G_j> = sum_u <G_i[u], G_j[u]>. The cheaper
of the two is used. ``padding_idx`` positions get no gradient; with
``scale_grad_by_freq`` each gradient is divided by its token's count in that example
(its batch of one), as the module's backward does.

An index that is not the model's input (position ids of shape (1, T), a relative-position
table of shape (T, T)) is one lookup shared by every example: its rows are read by all
examples, and each example's gradient of the shared output comes from
:mod:`._gram.broadcast`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.measure.gradients._gram.base import Handler, add_gram, compute_dtype, factor_gram

# Largest dense per-example gradient of a whole table (for shared tables), in bytes.
_DENSE_LIMIT = 2 << 30


class EmbeddingLayer(Handler):
    def _operands(self) -> tuple[Tensor, Tensor]:
        """(B, T) indices and (B, T, D) masked/scaled output gradients, calls joined."""
        b, m = self.b, self.module
        idxs, gs = [], []
        for call, (idx, gr) in enumerate(zip(self.inputs, self.grads)):
            g = gr[0]
            if g is None:
                continue
            if call in self.shared_calls:
                # one lookup for the whole batch: every example reads the same rows, and
                # g holds each example's own gradient of the shared output
                idx = idx.unsqueeze(0).expand(b, *idx.shape)
            elif idx.dim() == 0 or idx.shape[0] != b:
                raise ValueError(f"module '{self.name}' received indices of shape "
                                 f"{tuple(idx.shape)} whose first axis is not the batch ({b})")
            idxs.append(idx.reshape(b, -1))
            gs.append(g.to(compute_dtype(g)).reshape(b, -1, g.shape[-1]))
        idx = idxs[0] if len(idxs) == 1 else torch.cat(idxs, dim=1)
        g = gs[0] if len(gs) == 1 else torch.cat(gs, dim=1)
        if m.padding_idx is not None:
            g = g * (idx != m.padding_idx).unsqueeze(-1).to(g.dtype)
        if m.scale_grad_by_freq:
            g = g / _counts_per_example(idx).unsqueeze(-1).to(g.dtype)
        return idx, g

    def gram(self, exclude: frozenset[str]) -> Tensor | None:
        if not self.trainable("weight", exclude) or all(g[0] is None for g in self.grads):
            return None
        idx, g = self._operands()
        b, t, d = g.shape
        uniq, inv = torch.unique(idx, return_inverse=True)
        factor = (b * t) ** 2 * (d + 2) / 2
        mat = b * t * d + b * b * uniq.numel() * d
        use_factor = self.method == "factor" or (self.method == "auto" and factor < mat)
        self.strategy = "factorized" if use_factor else "materialized"
        if use_factor:
            flat = idx.reshape(-1)
            return factor_gram(None, g, self.chunk_bytes,  # type: ignore[arg-type]
                               mask=lambda ri, rj: (flat[ri, None] == flat[None, rj]).to(g.dtype))
        return add_gram(None, _scatter(g, inv, uniq.numel()).reshape(b, -1))

    def per_example(self, attr: str) -> Tensor:
        """Dense (B, num_embeddings * D) gradients; refused when they would not fit."""
        idx, g = self._operands()
        b, _, d = g.shape
        n = self.module.num_embeddings
        if b * n * d * g.element_size() > _DENSE_LIMIT:
            raise ValueError(
                f"the embedding '{self.name}' ({n} x {d}) shares its weight with another "
                f"module; its {b} dense per-example gradients would need "
                f"{b * n * d * g.element_size() / 2**30:.1f} GiB")
        return _scatter(g, idx, n).reshape(b, -1)


def _scatter(g: Tensor, idx: Tensor, n: int) -> Tensor:
    """(B, n, D) with row u of example i = sum of g_it over positions with idx_it = u."""
    b, t, d = g.shape
    out = torch.zeros(b * n, d, dtype=g.dtype, device=g.device)
    rows = (torch.arange(b, device=g.device).unsqueeze(1) * n + idx).reshape(-1)
    out.index_add_(0, rows, g.reshape(b * t, d))
    return out.view(b, n, d)


def _counts_per_example(idx: Tensor) -> Tensor:
    """(B, T): how often idx_it occurs in example i."""
    b, t = idx.shape
    uniq, inv = torch.unique(idx, return_inverse=True)
    rows = (torch.arange(b, device=idx.device).unsqueeze(1) * uniq.numel() + inv).reshape(-1)
    counts = torch.zeros(b * uniq.numel(), dtype=torch.long, device=idx.device)
    counts.index_add_(0, rows, torch.ones_like(rows))
    return counts[rows].view(b, t)


def is_embedding(module: Any) -> bool:
    return isinstance(module, nn.Embedding) and type(module).forward is nn.Embedding.forward
