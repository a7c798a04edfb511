"""Self-attention whose weights need not sum to one, with optional normalization and
residual connection (Ouellette, Pfister & Jud, 2023)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.nn.residual import BranchTap, ResidualBlock

NORMALIZATIONS = ("softmax", "none", "sigmoid", "relu")
NORMS = ("layer", "rms", "none")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return str(value)


def make_norm(norm: str, dim: int, eps: float = 1e-5, device: Any = None, dtype: Any = None
              ) -> nn.Module:
    """The normalization layer named ``norm`` ("layer", "rms" or "none") over ``dim``
    features.

    Examples:
        >>> make_norm("rms", 8)
        RMSNorm((8,), eps=1e-05, elementwise_affine=True)
    """
    _choice("norm", norm, NORMS)
    if norm == "layer":
        return nn.LayerNorm(dim, eps=eps, device=device, dtype=dtype)
    if norm == "rms":
        return nn.RMSNorm(dim, eps=eps, device=device, dtype=dtype)
    return nn.Identity()


class SelfAttention(ResidualBlock):
    """Multi-head self-attention with a choice of weight normalization, normalization layer
    and residual connection: a drop-in for the attention sublayer of a transformer.

    With ``q, k, v`` the per-head projections of the input and scores
    ``s_ij = q_i . k_j / sqrt(head_dim)``, head output ``o_i = sum_j w_ij v_j`` with

    * ``normalize="softmax"``: ``w_ij = exp(s_ij) / sum_k exp(s_ik)`` (the usual attention;
      ``sum_j w_ij = 1``: the output is an average, its size does not grow with the number
      of keys, and how many keys matched is lost);
    * ``"none"``: ``w_ij = s_ij``; ``"sigmoid"``: ``1 / (1 + exp(-s_ij))``; ``"relu"``:
      ``max(s_ij, 0)``: elementwise, so ``sum_j w_ij`` grows with the length ``L`` and the
      output is a sum that carries counts (Ouellette et al. count with ``"none"``).

    What this does to the signal: the branch output's second moment stays bounded (and,
    for zero-mean values, shrinks like ``E[sum_j w_ij^2] ~ e^(Var s) / L``) under softmax and
    grows like ``L`` (zero-mean values) or ``L^2`` (values with a mean) under the elementwise
    weights; :func:`signalprop.theory.attention_sum` predicts both curves.

    ``norm`` ("layer" LayerNorm, "rms" RMSNorm, "none") sits after the residual add
    (``norm_first=False``, the original post-LN transformer) or before the attention
    (``norm_first=True``); LayerNorm removes a token's magnitude, so after it a count can
    only survive in the direction of the vector. ``residual=False`` drops the skip
    connection (the reference counting model has none).

    Args:
        embed_dim: the model width E (``nn.MultiheadAttention``'s name).
        num_heads: heads; ``embed_dim`` must be divisible by it.
        dropout: dropout on the attention weights.
        bias: biases in the input and output projections.
        normalize: "softmax", "none", "sigmoid" or "relu".
        norm: "layer", "rms" or "none".
        residual: add the input to the attention output.
        norm_first: pre-norm (True) or post-norm (False).
        batch_first: inputs (N, T, E) (True) or (T, N, E).
        eps: the normalization layer's epsilon.
        device: as for torch layers.
        dtype: as for torch layers.

    Shapes:
        forward(x (N, T, E), key_padding_mask (N, T) bool, True = ignore that key)
        -> (N, T, E). Parameter names match ``nn.MultiheadAttention`` (``in_proj_weight``
        (3E, E), ``in_proj_bias``, ``out_proj``).

    Examples:
        >>> attn = SelfAttention(8, 2, normalize="none", norm="none", residual=False)
        >>> x = torch.randn(1, 5, 8)
        >>> y = attn(torch.cat([x, x], dim=1))    # every key twice: twice the output
        >>> torch.allclose(y[:, :5], 2 * attn(x), atol=1e-5)
        True
        >>> attn.weights(x).shape                 # (N, heads, T, T)
        torch.Size([1, 2, 5, 5])

    References:
        Ouellette, Pfister & Jud, "Counting and algorithmic generalization with
        transformers" (arXiv 2310.08661, 2023); Vaswani et al., "Attention is all you
        need" (NeurIPS 2017).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        normalize: str = "softmax",
        norm: str = "layer",
        residual: bool = True,
        norm_first: bool = False,
        batch_first: bool = True,
        eps: float = 1e-5,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"embed_dim must be a positive multiple of num_heads, got "
                             f"embed_dim={embed_dim}, num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.normalize = _choice("normalize", normalize, NORMALIZATIONS)
        self.norm_kind = _choice("norm", norm, NORMS)
        self.residual, self.norm_first, self.batch_first = residual, norm_first, batch_first
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **kw)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.norm = make_norm(norm, embed_dim, eps, **kw)
        if residual:
            self.branch_tap = BranchTap()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.MultiheadAttention``'s initialization: Xavier-uniform input projection,
        zero biases; the normalization layer's own reset."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj.reset_parameters()
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        if hasattr(self.norm, "reset_parameters"):
            self.norm.reset_parameters()

    def adds_tapped_branch(self) -> bool:
        return self.residual and (self.norm_first or self.norm_kind == "none")

    def weights(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """The normalized attention weights ``w`` (N, heads, T, T) for input ``x`` (after
        the pre-norm when ``norm_first``)."""
        x = x if self.batch_first else x.transpose(0, 1)
        if self.norm_first:
            x = self.norm(x)
        q, k, _ = self._qkv(x)
        return self._normalize(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim),
                               key_padding_mask)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, t, _ = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (N, T, 3E)
        qkv = qkv.view(n, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each (N, H, T, D)

    def _normalize(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:
            if mask.shape != (scores.shape[0], scores.shape[-1]) or mask.dtype != torch.bool:
                raise ValueError(f"key_padding_mask must be a bool tensor of shape "
                                 f"{(scores.shape[0], scores.shape[-1])} (True = ignore), got "
                                 f"{mask.dtype} {tuple(mask.shape)}")
            mask = mask[:, None, None, :]
        if self.normalize == "softmax":
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            return torch.softmax(scores, dim=-1)
        if self.normalize == "sigmoid":
            w = torch.sigmoid(scores)
        elif self.normalize == "relu":
            w = torch.relu(scores)
        else:
            w = scores
        return w if mask is None else w.masked_fill(mask, 0.0)

    def attend(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """The attention output alone (no norm, no residual) for batch-first ``x``."""
        n, t, e = x.shape
        q, k, v = self._qkv(x)
        w = self._normalize(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim),
                            key_padding_mask)
        w = F.dropout(w, self.dropout, self.training)
        return self.out_proj((w @ v).transpose(1, 2).reshape(n, t, e))

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        x = x if self.batch_first else x.transpose(0, 1)
        if self.norm_first:
            branch = self.attend(self.norm(x), key_padding_mask)
            out = (self.residual_add(x, self.branch_tap(branch)) if self.residual else branch)
        else:
            branch = self.attend(x, key_padding_mask)
            out = self.norm(self.residual_add(x, self.branch_tap(branch)) if self.residual
                            else branch)
        return out if self.batch_first else out.transpose(0, 1)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"normalize={self.normalize!r}, norm={self.norm_kind!r}, "
                f"residual={self.residual}, norm_first={self.norm_first}")
