"""A small MLP-Mixer-style network of PHM layers for 1-D signals, with PHYDI.

The signal (B, L) (or (B, C, L)) is cut into T = L / patch tokens, embedded by a real
linear layer into ``dim`` features, and passed through ``depth`` mixer blocks, each two
residual branches (Tolstikhin et al. 2021):

    tokens:   x + g * PHM(act(PHM(norm(x)^T)))^T     (mixes the T positions)
    channels: x + g * PHM(act(PHM(norm(x))))         (mixes the dim features)

with :class:`~signalprop.nn.PHMLinear` (variance-correct init) and LayerNorm (``norm``).
PHYDI (Mancanelli et al. 2023, as in their PH Transformers) puts a learnable scalar g at 0
on every branch, so each block is the identity at initialization; without it g is absent.
A mean over tokens and a linear head give the logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.models._registry import register_model
from signalprop.nn import BranchTap, PHMLinear, ResidualBlock, SkipInit, he_gain
from signalprop.nn.activations import make_activation


class PHMixerBranch(ResidualBlock):
    """``x + g * MLP(norm(x))`` along the token axis (``mix="tokens"``) or the feature axis.

    Inputs are (B, T, D). The MLP is PHM -> activation -> PHM with hidden size ``hidden``;
    g is a :class:`SkipInit` at 0 with ``phydi``.

    Examples:
        >>> branch = PHMixerBranch(8, 16, mix="tokens", n=4, norm_dim=12)  # 8 tokens of 12
        >>> x = torch.randn(2, 8, 12)
        >>> torch.equal(branch(x), x)
        True
    """

    def __init__(self, size: int, hidden: int, mix: str, n: int = 4, norm_dim: int | None = None,
                 activation: str = "gelu", phydi: bool = True, norm: bool = True) -> None:
        super().__init__()
        if mix not in ("tokens", "features"):
            raise ValueError(f"mix must be 'tokens' or 'features', got {mix!r}")
        self.mix = mix
        width = norm_dim if norm_dim is not None else size
        self.norm = nn.LayerNorm(width) if norm else nn.Identity()
        self.fc1 = PHMLinear(size, hidden, n, gain=1.0)
        self.act = make_activation(activation)
        self.fc2 = PHMLinear(hidden, size, n, gain=he_gain(activation))
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(0.0) if phydi else None

    def forward(self, x: Tensor) -> Tensor:  # (B, T, D)
        h = self.norm(x)
        if self.mix == "tokens":
            h = self.fc2(self.act(self.fc1(h.transpose(1, 2)))).transpose(1, 2)
        else:
            h = self.fc2(self.act(self.fc1(h)))
        h = self.branch_tap(h)
        if self.skip_gain is not None:
            h = self.skip_gain(h)
        return self.residual_add(x, h)

    def adds_tapped_branch(self) -> bool:
        return self.skip_gain is None


class PHMixer(nn.Module):
    """The PH mixer of :func:`ph_mixer`: ``embed`` -> ``blocks.{2b}`` (token mixing),
    ``blocks.{2b+1}`` (feature mixing) -> ``final_norm`` -> mean over tokens -> ``fc``.

    Examples:
        >>> m = ph_mixer(depth=1, dim=8, patch=5, length=40)
        >>> m(torch.randn(2, 40)).shape, len(m.signal_blocks())
        (torch.Size([2, 10]), 3)
    """

    def __init__(self, depth: int, dim: int, patch: int, length: int, n: int, in_chans: int,
                 num_classes: int, activation: str, phydi: bool, norm: bool) -> None:
        super().__init__()
        self.patch, self.tokens = patch, length // patch
        self.embed = nn.Linear(patch * in_chans, dim)
        blocks: list[nn.Module] = []
        for _ in range(depth):
            blocks.append(PHMixerBranch(self.tokens, 2 * self.tokens, "tokens", n, dim,
                                        activation, phydi, norm))
            blocks.append(PHMixerBranch(dim, 2 * dim, "features", n, None, activation, phydi,
                                        norm))
        self.blocks = nn.Sequential(*blocks)
        self.final_norm = nn.LayerNorm(dim) if norm else nn.Identity()
        self.fc = nn.Linear(dim, num_classes)
        with torch.no_grad():
            for m in (self.embed, self.fc):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features))
                m.bias.zero_()

    def signal_blocks(self) -> list[tuple[str, nn.Module]]:
        """The embedding, then every residual branch (outputs (B, T, D): channel_dim=-1)."""
        return [("embed", self.embed)] + [(f"blocks.{i}", b) for i, b in enumerate(self.blocks)]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (B, L) -> (B, 1, L)
        b, c, _ = x.shape
        tokens = x.reshape(b, c, self.tokens, self.patch).permute(0, 2, 1, 3)
        h = self.embed(tokens.reshape(b, self.tokens, c * self.patch))  # (B, T, D)
        h = self.final_norm(self.blocks(h))
        return self.fc(h.mean(dim=1))


def ph_mixer(depth: int = 4, *, dim: int = 32, patch: int = 5, length: int = 40, n: int = 4,
             in_chans: int = 1, num_classes: int = 10, activation: str = "gelu",
             phydi: bool = True, norm: bool = True) -> PHMixer:
    """An MLP-Mixer of PHM layers for signals of ``length`` positions.

    Args:
        depth: mixer blocks (each a token-mixing and a feature-mixing branch).
        dim: features per token (a multiple of ``n``).
        patch: positions per token; ``length / patch`` tokens (a multiple of ``n``).
        length: the signal length.
        n: hypercomplex dimension of the PHM layers.
        in_chans: input channels (inputs (B, L) are one channel).
        num_classes: outputs of the linear head.
        activation: the MLPs' activation.
        phydi: a learnable scalar at 0 on every branch.
        norm: LayerNorm before every branch and before the head.

    Returns:
        A :class:`PHMixer`.

    Examples:
        >>> net = ph_mixer(depth=2, dim=16)  # MNIST-1D: 8 tokens of 5 positions
        >>> net.tokens, net(torch.randn(3, 40)).shape
        (8, torch.Size([3, 10]))
    """
    for name, v in (("depth", depth), ("dim", dim), ("patch", patch), ("length", length),
                    ("n", n), ("in_chans", in_chans), ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if length % patch:
        raise ValueError(f"length={length} is not divisible by patch={patch}")
    if (length // patch) % n or dim % n:
        raise ValueError(f"the token count length/patch={length // patch} and dim={dim} must "
                         f"be multiples of n={n}")
    return PHMixer(depth, dim, patch, length, n, in_chans, num_classes, activation,
                   bool(phydi), bool(norm))


register_model("ph_mixer", ph_mixer, "MLP-Mixer of PHM layers (PHYDI by default) for MNIST-1D")
