"""Gram contribution of ``nn.LayerNorm`` and ``nn.RMSNorm``: y = xhat * w + b with xhat the
input normalized over the last ``len(normalized_shape)`` axes, so example i's gradients are

    dL/dw = sum_t g_it * xhat_it,        dL/db = sum_t g_it

over its positions t (tokens, pixels). Both are formed per example (B x C values, the size
of the layer's parameters) from the recorded input and output gradient; xhat is recomputed
as the module does (LayerNorm: (x - mean) / sqrt(var + eps), biased variance; RMSNorm:
x / sqrt(mean(x^2) + eps)).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.measure.gradients._gram.base import Handler, add_gram, compute_dtype


def is_norm(module: Any) -> bool:
    """A LayerNorm / RMSNorm whose forward is torch's own."""
    kinds = [nn.LayerNorm] + ([nn.RMSNorm] if hasattr(nn, "RMSNorm") else [])
    return any(type(module) is k for k in kinds)


class NormLayer(Handler):
    """Per-example weight / bias gradients of a LayerNorm or RMSNorm, materialized."""

    strategy = "materialized"

    def _normalized(self, x: Tensor) -> Tensor:
        m = self.module
        dims = tuple(range(-len(m.normalized_shape), 0))
        eps = m.eps if m.eps is not None else torch.finfo(x.dtype).eps
        if isinstance(m, nn.LayerNorm):
            mean = x.mean(dims, keepdim=True)
            var = x.var(dims, keepdim=True, unbiased=False)
            return (x - mean) * torch.rsqrt(var + eps)
        return x * torch.rsqrt(x.square().mean(dims, keepdim=True) + eps)

    def _rows(self) -> dict[str, Tensor]:
        """{"weight": (B, C), "bias": (B, C)} summed over every call's positions."""
        b = self.b
        n = len(self.module.normalized_shape)
        out: dict[str, Tensor] = {}
        for x, grads in zip(self.inputs, self.grads):
            g = grads[0]
            if g is None:
                continue
            if x.shape[0] != b or g.shape[0] != b:
                raise ValueError(f"module '{self.name}' received input of shape "
                                 f"{tuple(x.shape)} whose first axis is not the batch ({b})")
            dt = compute_dtype(g)
            g = g.to(dt)
            parts = {"bias": g, "weight": g * self._normalized(x.to(dt))}
            for attr, t in parts.items():
                # (B, ..., *normalized_shape) -> (B, positions, C) -> summed over positions
                t = t.reshape(b, -1, *t.shape[t.dim() - n:]).sum(dim=1).reshape(b, -1)
                out[attr] = out[attr] + t if attr in out else t
        return out

    def gram(self, exclude: frozenset[str]) -> Tensor | None:
        rows = self._rows()
        result = None
        for attr, r in rows.items():
            if self.trainable(attr, exclude):
                result = add_gram(result, r)
        return result

    def per_example(self, attr: str) -> Tensor:
        rows = self._rows()
        if attr in rows:
            return rows[attr]
        p = self.params[attr]
        return torch.zeros(self.b, p.numel(), dtype=p.dtype, device=p.device)
