"""Small transformer encoders built from :class:`signalprop.nn.SelfAttention`, with the
weight normalization, the normalization layer and the residual connections as options.

``transformer(...)`` stacks ``depth`` encoder layers, each an attention sublayer and (with
``mlp_hidden > 0``) a feed-forward sublayer arranged alike (post-norm or pre-norm, with or
without residual), between a token embedding and a per-token linear head. With
``normalize="softmax", norm="layer"`` it is the standard encoder of Vaswani et al.;
``normalize="none", norm="none"`` is the counting transformer of Ouellette, Pfister & Jud
(2023), whose attention output is a sum over tokens and so carries counts.

Examples:
    >>> import torch
    >>> net = transformer(vocab_size=10, d_model=16, depth=2, heads=2, normalize="none",
    ...                   mlp_hidden=32)
    >>> net(torch.randint(0, 10, (3, 7))).shape
    torch.Size([3, 7, 1])
    >>> [name for name, _ in net.signal_blocks()]
    ['embed', 'layers.0.attn', 'layers.0.ff', 'layers.1.attn', 'layers.1.ff']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.nn.attention import NORMALIZATIONS, NORMS, SelfAttention, make_norm
from signalprop.nn.residual import BranchTap, ResidualBlock

EMBEDDINGS = ("learned", "onehot", "linear")


@dataclass(frozen=True)
class TransformerConfig:
    """What a :class:`Transformer` is made of (see :func:`transformer` for each field).

    Examples:
        >>> TransformerConfig(vocab_size=10, d_model=16).normalize
        'softmax'
    """

    vocab_size: int | None = None  # token inputs (N, T) of ids < vocab_size
    in_features: int | None = None  # or float inputs (N, T, in_features)
    d_model: int = 64
    depth: int = 1
    heads: int = 1
    normalize: str = "softmax"
    norm: str = "layer"
    norm_first: bool = False
    residual: bool = True
    mlp_hidden: int = 0  # 0: attention-only layers
    out_features: int = 1
    embedding: str = "learned"  # "learned", "onehot" (fixed, needs d_model >= vocab)
    pad_id: int | None = None  # tokens equal to pad_id are ignored as keys
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if (self.vocab_size is None) == (self.in_features is None):
            raise ValueError("give exactly one of vocab_size (token inputs) and in_features "
                             f"(float inputs), got vocab_size={self.vocab_size!r}, "
                             f"in_features={self.in_features!r}")
        for name in ("d_model", "depth", "heads", "out_features"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.mlp_hidden < 0:
            raise ValueError(f"mlp_hidden must be >= 0 (0: no feed-forward), got "
                             f"{self.mlp_hidden!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        embeddings = EMBEDDINGS[:2] if self.vocab_size is not None else ("linear",)
        embedding = "linear" if self.in_features is not None else self.embedding
        if embedding not in embeddings:
            raise ValueError(f"embedding must be one of {embeddings} for these inputs, got "
                             f"{self.embedding!r}")
        if embedding == "onehot" and self.d_model < (self.vocab_size or 0):
            raise ValueError(f"embedding='onehot' needs d_model >= vocab_size, got d_model="
                             f"{self.d_model}, vocab_size={self.vocab_size}")


class FeedForward(ResidualBlock):
    """The feed-forward sublayer ``Linear -> ReLU -> Linear``, with the same norm and
    residual arrangement as the attention sublayer beside it.

    Examples:
        >>> ff = FeedForward(8, 16, norm="none")
        >>> ff(torch.zeros(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, hidden: int, *, norm: str = "layer",
                 residual: bool = True, norm_first: bool = False, dropout: float = 0.0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.fc1 = nn.Linear(d_model, hidden, **kw)
        self.fc2 = nn.Linear(hidden, d_model, **kw)
        self.norm = make_norm(norm, d_model, **kw)
        self.norm_kind, self.residual, self.norm_first = norm, residual, norm_first
        self.dropout = dropout
        if residual:
            self.branch_tap = BranchTap()

    def adds_tapped_branch(self) -> bool:
        return self.residual and (self.norm_first or self.norm_kind == "none")

    def _branch(self, x: Tensor) -> Tensor:
        return F.dropout(self.fc2(F.relu(self.fc1(x))), self.dropout, self.training)

    def forward(self, x: Tensor) -> Tensor:
        if self.norm_first:
            branch = self._branch(self.norm(x))
            return self.residual_add(x, self.branch_tap(branch)) if self.residual else branch
        branch = self._branch(x)
        return self.norm(self.residual_add(x, self.branch_tap(branch)) if self.residual
                         else branch)


class EncoderLayer(nn.Module):
    """One encoder layer: ``attn`` (a :class:`~signalprop.nn.SelfAttention`), then ``ff``
    (a :class:`FeedForward`, if any).

    Examples:
        >>> layer = EncoderLayer(TransformerConfig(vocab_size=4, d_model=8, mlp_hidden=16))
        >>> layer(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, cfg: TransformerConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.attn = SelfAttention(cfg.d_model, cfg.heads, cfg.dropout, normalize=cfg.normalize,
                                  norm=cfg.norm, residual=cfg.residual,
                                  norm_first=cfg.norm_first, **kw)
        self.ff = (FeedForward(cfg.d_model, cfg.mlp_hidden, norm=cfg.norm,
                               residual=cfg.residual, norm_first=cfg.norm_first,
                               dropout=cfg.dropout, **kw) if cfg.mlp_hidden else None)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        x = self.attn(x, key_padding_mask)
        return self.ff(x) if self.ff is not None else x


class Transformer(nn.Module):
    """A transformer encoder with a per-token linear head; see :func:`transformer`.

    Examples:
        >>> net = transformer(in_features=3, d_model=8, out_features=2)
        >>> net(torch.randn(4, 6, 3)).shape
        torch.Size([4, 6, 2])
    """

    def __init__(self, cfg: TransformerConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.config = cfg
        self.embed: nn.Module
        if cfg.in_features is not None:
            self.embed = nn.Linear(cfg.in_features, cfg.d_model, **kw)
        elif cfg.embedding == "onehot":
            self.embed = _OneHot(cfg.d_model)
        else:
            self.embed = nn.Embedding(cfg.vocab_size or 0, cfg.d_model, **kw)
        self.layers = nn.ModuleList(EncoderLayer(cfg, **kw) for _ in range(cfg.depth))
        self.head = nn.Linear(cfg.d_model, cfg.out_features, **kw)

    def signal_blocks(self) -> list[tuple[str, nn.Module]]:
        """Measurement points: the embedding, then every attention and feed-forward
        sublayer in order."""
        out: list[tuple[str, nn.Module]] = [("embed", self.embed)]
        for i, layer in enumerate(self.layers):
            out.append((f"layers.{i}.attn", layer.attn))
            if layer.ff is not None:
                out.append((f"layers.{i}.ff", layer.ff))
        return out

    def _mask(self, x: Tensor) -> Tensor | None:
        pad = self.config.pad_id
        if pad is None or x.is_floating_point():
            return None
        return x == pad

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.config
        if cfg.vocab_size is not None and (x.is_floating_point() or x.dim() != 2):
            raise ValueError(f"this transformer takes token ids (N, T), got {x.dtype} "
                             f"{tuple(x.shape)}")
        mask = self._mask(x)
        h = self.embed(x.clamp(0, (cfg.vocab_size or 1) - 1) if mask is not None else x)
        for layer in self.layers:
            h = layer(h, mask)
        return self.head(h)


class _OneHot(nn.Module):
    """Token ids -> fixed one-hot vectors of width ``dim``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.one_hot(x, self.dim).to(torch.get_default_dtype())

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def transformer(
    vocab_size: int | None = None,
    d_model: int = 64,
    depth: int = 1,
    heads: int = 1,
    *,
    in_features: int | None = None,
    normalize: str = "softmax",
    norm: str = "layer",
    norm_first: bool = False,
    residual: bool = True,
    mlp_hidden: int = 0,
    out_features: int = 1,
    embedding: str = "learned",
    pad_id: int | None = None,
    dropout: float = 0.0,
    device: Any = None,
    dtype: Any = None,
) -> Transformer:
    """A transformer encoder over tokens (or feature vectors) with a per-token head.

    Args:
        vocab_size: token inputs ``(N, T)`` with ids in ``[0, vocab_size)``.
        d_model: the width.
        depth: encoder layers.
        heads: attention heads per layer.
        in_features: instead of tokens, float inputs ``(N, T, in_features)`` (a linear
            embedding).
        normalize: attention weights: "softmax", "none", "sigmoid" or "relu".
        norm: "layer" (LayerNorm), "rms" (RMSNorm) or "none".
        norm_first: pre-norm (True) or post-norm (False, the original transformer).
        residual: skip connections around each sublayer.
        mlp_hidden: hidden width of the feed-forward sublayers (0: none).
        out_features: outputs per token.
        embedding: "learned" (``nn.Embedding``) or "onehot" (fixed one-hot vectors, as the
            reference counting model feeds its colours).
        pad_id: tokens equal to ``pad_id`` are padding: ignored as keys (their own
            outputs are meaningless); the ids may then include ``pad_id >= vocab_size``.
        dropout: on attention weights and feed-forward outputs.
        device: as for torch layers.
        dtype: as for torch layers.

    Returns:
        :class:`Transformer` with outputs ``(N, T, out_features)``.

    Examples:
        >>> net = transformer(vocab_size=10, d_model=10, normalize="none", norm="none",
        ...                   embedding="onehot", pad_id=10)
        >>> x = torch.tensor([[1, 2, 10, 10]])
        >>> torch.allclose(net(x)[:, :2], net(x[:, :2]), atol=1e-6)  # padding changes nothing
        True
    """
    cfg = TransformerConfig(vocab_size=vocab_size, in_features=in_features, d_model=d_model,
                            depth=depth, heads=heads, normalize=normalize, norm=norm,
                            norm_first=norm_first, residual=residual, mlp_hidden=mlp_hidden,
                            out_features=out_features, embedding=embedding, pad_id=pad_id,
                            dropout=dropout)
    return Transformer(cfg, device=device, dtype=dtype)


def config_dict(model: Transformer) -> dict[str, Any]:
    """The model's :class:`TransformerConfig` as a plain dict (for logs and results).

    Examples:
        >>> config_dict(transformer(vocab_size=5, d_model=8))["normalize"]
        'softmax'
    """
    return asdict(model.config)
