"""Attention layers whose weights need not sum to one (counting needs sums, not averages).

- :class:`SelfAttention`: multi-head self-attention with ``normalize`` ("softmax", "none",
  "sigmoid", "relu"), ``norm`` ("layer", "rms", "none") and an optional residual
  connection (Ouellette, Pfister & Jud, 2023);
- :func:`make_norm`: the normalization layer by name.
"""

from signalprop.nn.attention._self_attention import NORMALIZATIONS, NORMS, SelfAttention, make_norm

__all__ = ["NORMALIZATIONS", "NORMS", "SelfAttention", "make_norm"]
