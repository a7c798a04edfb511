"""Gram contributions of Linear and ConvNd layers (and their Scaled-WS variants) from
per-example inputs and output gradients, at about the cost of a weight gradient.

For a weight used at positions t (sequence positions of a Linear, output pixels of a
convolution; several calls of the same module add their positions), example i's weight
gradient is G_i = sum_t g_it a_it^T per group, so

    <G_i, G_j> = sum_{t,s} <g_it, g_js> <a_it, a_js>                       (factorized)
    <G_i, G_j> = <vec G_i, vec G_j> with G_i formed explicitly            (materialized)

and the bias adds <sum_t g_it, sum_s g_js>. The factorized form costs ~(B T)^2 (K + O)
per group, the materialized one ~B T O K + B^2 O K (K: inputs per patch, O: outputs per
group); ``method="auto"`` takes the cheaper one per layer. A wide MLP layer (T = 1)
factorizes for ~B^2 (K + O) instead of B^2 K O; a convolution with T = 1024 positions
materializes for about the cost of its weight gradient.

Scaled-WS layers apply W_hat = f(W, gain); their gradients with respect to (W, gain) are
the vector-Jacobian products of f applied to each example's dL/dW_hat (materialized, in
chunks of output units: f acts on each unit's row separately).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.measure.gradients._gram.base import Handler, add_gram, compute_dtype, factor_gram
from signalprop.measure.gradients._gram.im2col import conv_patches
from signalprop.nn.normfree.std_conv import _ScaledWSMixin, standardize_weight

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_plain(module: nn.Module, base: type[nn.Module]) -> bool:
    """``module`` is a ``base`` whose forward is ``base.forward`` (not overridden)."""
    return isinstance(module, base) and type(module).forward is base.forward


def weight_layer_kind(module: nn.Module) -> str | None:
    """"linear", "conv", "ws_linear", "ws_conv" or None."""
    if isinstance(module, _ScaledWSMixin):
        return "ws_conv" if isinstance(module, _CONVS) else "ws_linear"
    if is_plain(module, nn.Linear):
        return "linear"
    if any(is_plain(module, c) for c in _CONVS):
        return "conv"
    return None


def _batch_first(t: Tensor, b: int, what: str) -> Tensor:
    """Move the batch axis to the front: axis 0 if it has size b, else the first such axis."""
    if t.dim() > 1 and t.shape[0] == b:
        return t
    for d in range(1, t.dim() - 1):
        if t.shape[d] == b:
            return t.movedim(d, 0)
    raise ValueError(f"{what} of shape {tuple(t.shape)} has no axis of the batch size {b}")


class WeightLayer(Handler):
    """Linear / ConvNd / Scaled-WS: factorized or materialized, chosen per layer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = weight_layer_kind(self.module)
        self.groups = getattr(self.module, "groups", 1)

    # (B, G, T, K) patches and (B, G, O, T) output gradients, every call's positions joined
    def _operands(self) -> tuple[Tensor, Tensor]:
        b, m = self.b, self.module
        pats, gts = [], []
        for x, gr in zip(self.inputs, self.grads):
            g = gr[0]
            if g is None:
                continue
            dt = compute_dtype(g)
            if self.kind in ("conv", "ws_conv"):
                if x.shape[0] != b:
                    raise ValueError(f"module '{self.name}' received input of shape "
                                     f"{tuple(x.shape)} whose first axis is not the batch ({b})")
                pats.append(conv_patches(x.to(dt), m).transpose(2, 3))  # a view
                gts.append(g.to(dt).reshape(b, self.groups, g.shape[1] // self.groups, -1))
            else:
                x = _batch_first(x, b, f"the input of '{self.name}'").to(dt)
                g = _batch_first(g, b, f"the output gradient of '{self.name}'").to(dt)
                pats.append(x.reshape(b, 1, -1, x.shape[-1]))
                gts.append(g.reshape(b, -1, g.shape[-1]).transpose(1, 2).unsqueeze(1))
        if len(pats) == 1:
            return pats[0], gts[0]
        return torch.cat(pats, dim=2), torch.cat(gts, dim=3)

    def costs(self, a: Tensor, gt: Tensor) -> tuple[float, float]:
        """(factorized, materialized) multiply-adds for the weight's Gram."""
        b, grp, t, k = a.shape
        o = gt.shape[2]
        factor = grp * (b * t) ** 2 * (k + o + 2) / 2  # blocks on/above the diagonal
        mat = grp * (b * t * o * k + b * b * o * k)
        return float(factor), float(mat)

    def gram(self, exclude: frozenset[str]) -> Tensor | None:
        if not any(g[0] is not None for g in self.grads):
            return None
        a, gt = self._operands()
        out: Tensor | None = None
        if self.trainable("bias", exclude):
            out = add_gram(out, gt.sum(dim=3).reshape(self.b, -1))
        ws = self.kind.startswith("ws")
        wanted = [p for p in ("weight", "gain") if self.trainable(p, exclude)]
        if not wanted or (not ws and "weight" not in wanted):
            return out
        factor, mat = self.costs(a, gt)
        use_factor = not ws and (self.method == "factor" or
                                 (self.method == "auto" and factor < mat))
        self.strategy = "factorized" if use_factor else "materialized"
        if use_factor:
            for grp in range(self.groups):
                w = factor_gram(a[:, grp], gt[:, grp].transpose(1, 2), self.chunk_bytes)
                out = w if out is None else out + w
            return out
        for rows in self._materialized_rows(a, gt, wanted):
            out = add_gram(out, rows)
        return out

    def _materialized_rows(self, a: Tensor, gt: Tensor, wanted: list[str]) -> Any:
        """Yield (B, n) per-example gradient rows of ``wanted`` in chunks of output units."""
        b, grp, _, k = a.shape
        o = gt.shape[2]
        step = max(1, self.chunk_bytes // max(1, b * k * a.element_size() * 3))
        for g in range(grp):
            for o0 in range(0, o, step):
                o1 = min(o, o0 + step)
                per_ex = gt[:, g, o0:o1] @ a[:, g]  # (B, units, K): dL/dW_hat rows
                if self.kind.startswith("ws"):
                    yield from self._ws_vjp(g * o + o0, g * o + o1, per_ex, wanted)
                else:
                    yield per_ex.reshape(b, -1)

    def _ws_vjp(self, r0: int, r1: int, per_ex: Tensor, wanted: list[str]) -> Any:
        m = self.module
        w = m.weight.detach()[r0:r1].to(per_ex.dtype)
        gain = m.gain.detach()[r0:r1].to(per_ex.dtype)

        def f(w_: Tensor, g_: Tensor) -> Tensor:
            return standardize_weight(w_, g_, m.gamma, m.eps, m.eps_mode)

        with torch.enable_grad():
            _, vjp_fn = torch.func.vjp(f, w, gain)
            gw, gg = torch.func.vmap(vjp_fn)(per_ex.reshape(self.b, *w.shape))
        if "weight" in wanted:
            yield gw.reshape(self.b, -1)
        if "gain" in wanted:
            yield gg.reshape(self.b, -1)

    def per_example(self, attr: str) -> Tensor:
        a, gt = self._operands()
        if attr == "bias":
            return gt.sum(dim=3).reshape(self.b, -1)
        # chunks follow the parameter's layout (groups, then output units)
        return torch.cat(list(self._materialized_rows(a, gt, [attr])), dim=1)
