"""Forward passes whose graphs can be differentiated twice.

The Jacobian and Hessian measurements differentiate a backward pass (the double-VJP trick,
Hessian-vector products). torch's fused attention kernels (``scaled_dot_product_attention``
on the CPU flash backend, and the CUDA flash / memory-efficient ones) have no derivative of
their backward, so every model built on ``nn.MultiheadAttention``, ``nn.Transformer*`` or
HuggingFace's ``attn_implementation="sdpa"`` fails there with "derivative ... not
implemented". The math backend computes the same attention from differentiable matrix
products (equal to rounding), so these measurements run their forward on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch.nn.attention import SDPBackend, sdpa_kernel


@contextlib.contextmanager
def twice_differentiable() -> Iterator[None]:
    """Run ``scaled_dot_product_attention`` on its math backend for the duration.

    Examples:
        >>> import torch
        >>> q = torch.randn(1, 2, 3, 4, requires_grad=True)
        >>> with twice_differentiable():
        ...     out = torch.nn.functional.scaled_dot_product_attention(q, q, q)
        >>> g, = torch.autograd.grad(out.square().sum(), q, create_graph=True)
        >>> torch.autograd.grad(g.sum(), q)[0].shape  # a second derivative exists
        torch.Size([1, 2, 3, 4])
    """
    with sdpa_kernel(SDPBackend.MATH):
        yield
