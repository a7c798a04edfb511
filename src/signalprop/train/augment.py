"""Augmentations for the offline signals and small images (MNIST-1D, digits): random
shifts, Gaussian noise and masking, the views a self-supervised objective compares.

Every draw comes from an explicit ``torch.Generator``, so a run seeded by (seed, step)
sees the same views when it is resumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Augment:
    """One random view of a batch: shift, then noise, then a masked segment.

    For inputs (B, L) or (B, C, L) the last axis is shifted and masked; for images
    (B, C, H, W) both spatial axes are shifted and a square is masked.

    Attributes:
        shift: largest shift in positions (uniform in [-shift, shift]; zero fill).
        noise: standard deviation of added Gaussian noise (inputs are standardized).
        mask: largest length (side) of a zeroed segment (square); 0 for none.
        scale: multiply each example by a factor uniform in [1 - scale, 1 + scale].

    Examples:
        >>> aug = Augment(shift=2, noise=0.0, mask=0, scale=0.0)
        >>> x = torch.arange(6.0).reshape(1, 6)
        >>> aug(x, torch.Generator().manual_seed(0)).tolist() in (
        ...     [[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]], [[0.0, 0.0, 1.0, 2.0, 3.0, 4.0]],
        ...     [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]], [[1.0, 2.0, 3.0, 4.0, 5.0, 0.0]],
        ...     [[2.0, 3.0, 4.0, 5.0, 0.0, 0.0]])
        True
    """

    shift: int = 4
    noise: float = 0.1
    mask: int = 8
    scale: float = 0.2

    def __post_init__(self) -> None:
        for name in ("shift", "mask"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not 0.0 <= self.noise:
            raise ValueError(f"noise must be >= 0, got {self.noise!r}")
        if not 0.0 <= self.scale < 1.0:
            raise ValueError(f"scale must be in [0, 1), got {self.scale!r}")

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        spatial = 2 if x.dim() == 4 else 1
        out = x
        if self.shift:
            out = _shift(out, self.shift, spatial, generator)
        if self.scale:
            s = 1.0 + self.scale * (2 * torch.rand(x.shape[0], generator=generator) - 1)
            out = out * s.to(x.device, x.dtype).view(-1, *[1] * (x.dim() - 1))
        if self.noise:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)  # on the CPU
            out = out + self.noise * noise.to(x.device)
        if self.mask:
            out = _mask(out, self.mask, spatial, generator)
        return out


def _shift(x: Tensor, most: int, spatial: int, gen: torch.Generator) -> Tensor:
    """Shift each example by its own offsets along the last ``spatial`` axes (zero fill)."""
    out = torch.zeros_like(x)
    offsets = torch.randint(-most, most + 1, (x.shape[0], spatial), generator=gen).tolist()
    for i, offs in enumerate(offsets):
        src, dst = [slice(None)] * x[i].dim(), [slice(None)] * x[i].dim()
        for axis, off in zip(range(x[i].dim() - spatial, x[i].dim()), offs):
            n = x.shape[axis + 1]
            src[axis] = slice(max(0, -off), n - max(0, off))
            dst[axis] = slice(max(0, off), n - max(0, -off))
        out[i][tuple(dst)] = x[i][tuple(src)]
    return out


def _mask(x: Tensor, most: int, spatial: int, gen: torch.Generator) -> Tensor:
    """Zero a random segment (square) of length up to ``most`` in each example."""
    out = x.clone()
    sizes = x.shape[x.dim() - spatial:]
    lengths = torch.randint(0, most + 1, (x.shape[0],), generator=gen).tolist()
    for i, length in enumerate(lengths):
        if length == 0:
            continue
        idx = [slice(None)] * (x.dim() - 1 - spatial)
        for n in sizes:
            start = int(torch.randint(0, max(1, n - length + 1), (1,), generator=gen))
            idx.append(slice(start, start + length))
        out[i][tuple(idx)] = 0.0
    return out
