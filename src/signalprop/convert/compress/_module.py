"""A :class:`ConvSpec` as a plain ``nn.ConvNd`` (with a padding module in front where the
padding is not the same on both sides), with the coarsest exact group structure."""

from __future__ import annotations

import torch
import torch.nn as nn

from signalprop.convert.compress._spec import _CONVS, _PADS, ConvSpec


def group_count(weight: torch.Tensor) -> int:
    """The largest g such that a dense (C_out, C_in, *K) weight is zero outside the g
    diagonal blocks of a g-group convolution (an exact property of the numbers).

    Examples:
        >>> w = torch.zeros(4, 4, 3)
        >>> w[0, 0] = w[1, 1] = w[2, 2] = w[3, 3] = 1.0   # depthwise
        >>> group_count(w)
        4
        >>> w[0, 1] = 1.0
        >>> group_count(w)
        2
    """
    c_out, c_in = weight.shape[:2]
    nonzero = weight.reshape(c_out, c_in, -1).ne(0).any(dim=2)
    common = torch.gcd(torch.tensor(c_out), torch.tensor(c_in)).item()
    for g in sorted((d for d in range(1, common + 1) if common % d == 0), reverse=True):
        rows = torch.arange(c_out) // (c_out // g)
        cols = torch.arange(c_in) // (c_in // g)
        if not bool((nonzero & (rows[:, None] != cols[None, :])).any()):
            return g
    return 1


def _grouped(weight: torch.Tensor, g: int) -> torch.Tensor:
    c_out, c_in = weight.shape[:2]
    o, i = c_out // g, c_in // g
    return torch.cat([weight[k * o:(k + 1) * o, k * i:(k + 1) * i] for k in range(g)])


def to_module(spec: ConvSpec, *, dtype: torch.dtype, device: torch.device | str | None = None
              ) -> nn.Module:
    """The convolution ``spec`` describes: an ``nn.ConvNd`` holding the merged weight, or
    ``nn.Sequential(<pad module>, nn.ConvNd)`` for unequal padding on the two sides."""
    nd = len(spec.kernel)
    g = group_count(spec.weight)
    c_out, c_in = spec.weight.shape[:2]
    symmetric = all(p[0] == p[1] for p in spec.pad)
    conv = _CONVS[nd](c_in, c_out, spec.kernel, stride=spec.stride, dilation=spec.dilation,
                      padding=tuple(p[0] for p in spec.pad) if symmetric else 0, groups=g,
                      bias=True, padding_mode=spec.mode if spec.padded else "zeros",
                      device=device, dtype=dtype)
    with torch.no_grad():
        conv.weight.copy_(_grouped(spec.weight, g))
        conv.bias.copy_(spec.bias)
    if symmetric:
        return conv
    pads = tuple(v for p in reversed(spec.pad) for v in p)  # last dim first, as F.pad
    return nn.Sequential(_PADS[spec.mode][nd](pads), conv)
