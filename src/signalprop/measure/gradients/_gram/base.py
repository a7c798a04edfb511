"""Shared pieces of the per-example gradient Gram: a layer handler's life cycle and the two
kernels every factorized layer uses.

A handler owns the trainable parameters of one module. During the forward it stores what
each call of the module received; during the backward it receives dL/d(output) of each
call (rows are examples, since the loss is a sum of per-example losses); then it returns
its (B, B) contribution sum_p <g_i,p, g_j,p> over its parameters p, or the per-example
gradients of one parameter (for parameters shared between modules).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

# Working memory of one block of the kernels below.
DEFAULT_CHUNK_BYTES = 64 << 20


class Handler:
    """Base class: stores calls, counts pending output gradients, frees what it used."""

    strategy = "?"

    def __init__(self, name: str, module: nn.Module, params: dict[str, nn.Parameter], b: int,
                 method: str, chunk_bytes: int) -> None:
        self.name, self.module, self.params, self.b = name, module, params, b
        self.method, self.chunk_bytes = method, chunk_bytes
        self.inputs: list[Any] = []
        self.grads: list[list[Tensor | None]] = []
        self.pending = 0
        # calls whose output the whole batch shares: their gradients carry a leading
        # example axis (see ._gram.broadcast)
        self.shared_calls: set[int] = set()

    # ---- forward / backward bookkeeping --------------------------------------------
    def capture(self, args: tuple[Any, ...], kwargs: dict[str, Any], n_leaves: int) -> int:
        """Store one call's inputs (its output has ``n_leaves`` leaves); returns its index."""
        self.inputs.append(self.store_inputs(args, kwargs))
        self.grads.append([None] * n_leaves)
        return len(self.inputs) - 1

    def store_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        x = args[0] if args else next(iter(kwargs.values()))
        return x.detach()

    def has_grads(self) -> bool:
        return any(g is not None for call in self.grads for g in call)

    def wants(self, leaf: int) -> bool:
        """Whether output leaf ``leaf`` of a call needs its gradient (default: the first)."""
        return leaf == 0

    def receive(self, call: int, leaf: int, grad: Tensor) -> None:
        self.grads[call][leaf] = grad.detach()
        self.pending -= 1

    def release(self) -> None:
        self.inputs.clear()
        self.grads.clear()
        self.shared_calls.clear()

    # ---- results -----------------------------------------------------------------------
    def gram(self, exclude: frozenset[str]) -> Tensor | None:
        """(B, B) float64 sum over this handler's parameters not in ``exclude``."""
        raise NotImplementedError

    def per_example(self, attr: str) -> Tensor:
        """(B, numel) per-example gradients of parameter ``attr``."""
        raise NotImplementedError

    def trainable(self, attr: str, exclude: frozenset[str]) -> bool:
        return attr in self.params and attr not in exclude


def compute_dtype(t: Tensor) -> torch.dtype:
    """Half-precision inputs are computed in float32; float32/64 stay as they are."""
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def add_gram(out: Tensor | None, rows: Tensor) -> Tensor:
    """``out + rows @ rows.T`` in float64, for per-example rows (B, n)."""
    g = (rows @ rows.T).to(torch.float64)
    return g if out is None else out + g


def block_size(b: int, t: int, itemsize: int, chunk_bytes: int) -> int:
    """Examples per block so that two (n*t, n*t) blocks fit in ``chunk_bytes``."""
    n = int(math.sqrt(chunk_bytes / (2 * itemsize))) // max(t, 1)
    return max(1, min(b, n))


def factor_gram(a: Tensor, g: Tensor, chunk_bytes: int,
                mask: Callable[[slice, slice], Tensor] | None = None) -> Tensor:
    """Gram_ij = sum_{t,s} <a_it, a_js> <g_it, g_js> without per-example gradients.

    Args:
        a: (B, T, K) inputs of one weight group per example and position; ``None``-like
            uses are replaced by ``mask`` (Embedding: [idx_it == idx_js]).
        g: (B, T, O) output gradients.
        mask: optional f(rows_i, rows_j) -> (n_i*T, n_j*T) factor replacing <a_it, a_js>.

    Blocks of examples keep the (n*T, n*T) products within ``chunk_bytes``; only blocks
    on and above the diagonal are computed.
    """
    b, t = g.shape[:2]
    out = torch.zeros(b, b, dtype=torch.float64, device=g.device)
    gf = g.reshape(b * t, -1)
    af = a.reshape(b * t, -1) if a is not None else None

    def product(ri: slice, rj: slice) -> Tensor:
        k = gf[ri] @ gf[rj].T
        k *= mask(ri, rj) if mask is not None else af[ri] @ af[rj].T  # type: ignore[index]
        return k

    if 2 * t * t * g.element_size() > chunk_bytes:
        # one example's (T, T) block is too large: chunk positions within each pair
        tc = max(1, int(math.sqrt(chunk_bytes / (2 * g.element_size()))))
        for i in range(b):
            for j in range(i, b):
                acc = torch.zeros((), dtype=torch.float64, device=g.device)
                for t0 in range(0, t, tc):
                    for s0 in range(0, t, tc):
                        ri = slice(i * t + t0, i * t + min(t, t0 + tc))
                        rj = slice(j * t + s0, j * t + min(t, s0 + tc))
                        acc += product(ri, rj).sum(dtype=torch.float64)
                out[i, j] = out[j, i] = acc
        return out
    n = block_size(b, t, g.element_size(), chunk_bytes)
    for i0 in range(0, b, n):
        i1 = min(b, i0 + n)
        for j0 in range(i0, b, n):
            j1 = min(b, j0 + n)
            k = product(slice(i0 * t, i1 * t), slice(j0 * t, j1 * t))
            blk = k.view(i1 - i0, t, j1 - j0, t).sum(dim=(1, 3), dtype=torch.float64)
            out[i0:i1, j0:j1] += blk
            if j0 != i0:
                out[j0:j1, i0:i1] += blk.T
    return out
