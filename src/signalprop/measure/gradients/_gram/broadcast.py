"""Per-example output gradients of modules whose output is shared by the whole batch.

A lookup with an index that is not the model's input (position ids of shape (1, T), a
relative-position bucket table of shape (T, T), a token-type buffer expanded over the
batch) gives one output that every example uses through broadcasting. The batched
backward sums its gradient over the examples, so the per-example parts cannot be read
from it: here they are computed directly, d l_i / d(output) for every i, as a batched
vector-Jacobian product of the per-example losses (one vmapped backward; one backward per
example where vmap cannot run the model's backward).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

# Examples per vmapped backward: bounds the memory of the batched gradients.
_CHUNK = 64


def input_storages(x: Any) -> set[int]:
    """Data pointers of the storages of every integer tensor in the model input ``x``."""
    return {t.untyped_storage().data_ptr() for t in pytree.tree_leaves(x)
            if isinstance(t, Tensor) and not t.is_floating_point() and not t.is_complex()
            and t.numel() > 0}


def is_per_example(index: Tensor, storages: set[int], b: int) -> bool:
    """Whether an embedding index is the model's input (or a view of it) with the batch on
    axis 0: then row i of the lookup belongs to example i. Any other index (positions,
    buckets, buffers) is treated as shared by the whole batch, which is exact either way.
    """
    return (index.dim() > 0 and index.shape[0] == b and index.numel() > 0
            and index.untyped_storage().data_ptr() in storages)


def per_example_grads(losses: Tensor, outputs: list[Tensor]) -> list[Tensor]:
    """``[(B, *out.shape)]``: d losses[i] / d out for each output and example i.

    Examples:
        >>> w = torch.randn(3, requires_grad=True)
        >>> shared = w * 1.0                       # one tensor used by every example
        >>> x = torch.randn(4, 3)
        >>> losses = (x * shared).sum(dim=1)       # l_i = <x_i, shared>
        >>> g, = per_example_grads(losses, [shared])
        >>> bool(torch.allclose(g, x))
        True
    """
    b = losses.shape[0]
    rows: list[list[Tensor]] = [[] for _ in outputs]
    eye = torch.eye(b, dtype=losses.dtype, device=losses.device)
    try:
        with warnings.catch_warnings():
            # vmap's per-example fallback for ops without a batching rule is still exact
            warnings.filterwarnings("ignore", message="There is a performance drop")
            for i0 in range(0, b, _CHUNK):
                gs = torch.autograd.grad(losses, outputs, eye[i0:i0 + _CHUNK],
                                         retain_graph=True, is_grads_batched=True,
                                         allow_unused=True)
                for k, (g, out) in enumerate(zip(gs, outputs)):
                    rows[k].append(torch.zeros(len(eye[i0:i0 + _CHUNK]), *out.shape,
                                               dtype=out.dtype, device=out.device)
                                   if g is None else g)
    except RuntimeError:
        return _loop(losses, outputs)
    return [torch.cat(r) for r in rows]


def _loop(losses: Tensor, outputs: list[Tensor]) -> list[Tensor]:
    """The same, one backward per example (models whose backward vmap cannot run)."""
    rows: list[list[Tensor]] = [[] for _ in outputs]
    for i in range(losses.shape[0]):
        gs = torch.autograd.grad(losses[i], outputs, retain_graph=True, allow_unused=True)
        for k, (g, out) in enumerate(zip(gs, outputs)):
            rows[k].append(torch.zeros_like(out) if g is None else g)
    return [torch.stack(r) for r in rows]

