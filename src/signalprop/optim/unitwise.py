"""Unit-wise norms of parameters in PyTorch layouts (the units AGC clips).

A unit is one output unit's slice of a weight:

* ``"rows"``: dim 0 indexes units: ``nn.Linear`` (out, in), ``nn.ConvNd`` (out, in/g, *k),
  ``nn.Embedding`` (num, dim; one row per token), ``nn.MultiheadAttention.in_proj_weight``
  (3E, E) and its q/k/v projections;
* ``"transposed"``: ``nn.ConvTransposeNd`` weights (in, out/g, *k); output channel
  g * (out/g) + j gathers rows g*(in/g) ... (g+1)*(in/g) - 1 of column j;
* ``"whole"``: scalars and vectors (biases, gains) are one unit.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

LAYOUTS = ("rows", "transposed", "whole")


def unitwise_norm(t: Tensor, layout: str = "rows", groups: int = 1) -> Tensor:
    """The L2 norm of each unit of ``t``, shaped to broadcast against ``t``.

    Args:
        t: a parameter or gradient tensor.
        layout: ``"rows"``, ``"transposed"`` (with ``groups``) or ``"whole"``; tensors with
            fewer than 2 dimensions are always ``"whole"``.
        groups: the ConvTranspose layer's groups (``"transposed"`` only).

    Returns:
        A tensor of norms, broadcastable to ``t.shape`` after :func:`unit_view`.

    Examples:
        >>> w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
        >>> unitwise_norm(w).flatten().tolist()
        [5.0, 1.0]
    """
    view, dims = unit_view(t, layout, groups)
    if dims is None:
        return torch.linalg.vector_norm(view)
    return torch.linalg.vector_norm(view, dim=dims, keepdim=True)


def unit_view(t: Tensor, layout: str, groups: int = 1) -> tuple[Tensor, tuple[int, ...] | None]:
    """A view of ``t`` and the dims to reduce for per-unit norms (None: the whole tensor)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if t.dim() < 2 or layout == "whole":
        return t, None
    if layout == "rows":
        return t.reshape(t.shape[0], -1), (1,)
    if groups < 1 or t.shape[0] % groups:
        raise ValueError(f"groups must divide the weight's first dimension {t.shape[0]}, "
                         f"got {groups}")
    # (in, out/g, *k) -> (g, in/g, out/g, prod k): one unit per (g, j)
    return t.reshape(groups, t.shape[0] // groups, t.shape[1], -1), (1, 3)


def layouts_of(model: nn.Module) -> dict[int, tuple[str, int]]:
    """id(parameter) -> (layout, groups) for every parameter of ``model``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ConvTranspose2d(4, 6, 3, groups=2))
        >>> [layouts_of(net)[id(p)] for p in net.parameters()]  # weight, bias, weight, bias
        [('rows', 1), ('whole', 1), ('transposed', 2), ('whole', 1)]
    """
    out: dict[int, tuple[str, int]] = {}
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if p.dim() < 2:
                out[id(p)] = ("whole", 1)
            elif isinstance(m, nn.modules.conv._ConvTransposeNd) and name == "weight":
                out[id(p)] = ("transposed", m.groups)
            else:
                out.setdefault(id(p), ("rows", 1))
    return out
