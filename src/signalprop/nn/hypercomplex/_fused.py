"""The PH weight composition W = sum_s kron(A_s, F_s) and its backward in C (``_cphm.c``).

Torch ops compose the weight in a matrix product into (a, b, p, q) order and one
interleaving copy, and autograd's backward re-lays the weight gradient out and takes two
more products: on a PHMLinear(512, 512) step that is ~0.45 ms next to ~2.6 ms of GEMMs.
The kernel writes W once (forward) and reads its gradient once for both factor gradients
(backward); see ``benchmarks/bench_phm.py`` and docs/performance.md.

Used for float32/float64 contiguous CPU factors of plain tensor types, on the first
backward of a graph (``create_graph=True`` gets the torch ops, which are differentiable
again), with no torch.func transform, forward-mode tangent, torch-function mode or
``torch.compile`` in play; everywhere else (and when the extension was not built, or its
check at first use failed) :func:`compose_torch` runs. Results agree with the torch ops to
rounding (sums are taken in another order; the algebra gradient is summed in the element
type over runs of 8 filter rows per vector lane, then in double), not bit for bit. Algebras
larger than n = MAX_N (the kernel keeps n^3 vector accumulators per thread) take the torch
ops too.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
from torch import Tensor

try:  # built from _cphm.c at install; optional
    from signalprop.nn.hypercomplex import _cphm
except ImportError:  # pragma: no cover - depends on the build
    _cphm = None

try:
    from torch._C._functorch import is_functorch_wrapped_tensor
except ImportError:  # pragma: no cover - a torch without functorch
    def is_functorch_wrapped_tensor(t: Tensor) -> bool:
        return False

_DTYPES = (torch.float32, torch.float64)
_PLAIN = (torch.Tensor, nn.Parameter)
MAX_N = 64  # largest algebra the kernel takes (n^3 * 72 bytes of scratch per thread)
_checked: bool | None = None  # None: not yet; then whether the kernel passed its check


def compose_torch(algebra: Tensor, filters: Tensor) -> Tensor:
    """W = sum_s kron(A_s, F_s) in torch ops: one product, one interleaving copy."""
    n, o, i, kernel = algebra.shape[0], filters.shape[1], filters.shape[2], filters.shape[3:]
    w = torch.mm(algebra.reshape(n, n * n).T, filters.reshape(n, -1))  # A: a view, no copy
    return w.view(n, n, o, -1).transpose(1, 2).reshape(n * o, n * i, *kernel)


def grads_torch(algebra: Tensor, filters: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """(dL/dA, dL/dF) from dL/dW in torch ops (differentiable): the re-layout of the
    weight gradient to (a, b, p, q) order and two products."""
    n, o = algebra.shape[0], filters.shape[1]
    g = grad.reshape(n, o, n, -1).transpose(1, 2).reshape(n * n, -1)
    ga = torch.mm(filters.reshape(n, -1), g.T).view(n, n, n)
    gf = torch.mm(algebra.reshape(n, n * n), g).view(filters.shape)
    return ga, gf


def kernel_available() -> bool:
    """Whether the C composition was built and passed its check against the torch ops."""
    global _checked
    if _cphm is None:
        return False
    if _checked is None:
        _checked = _check_kernel()
    return _checked


def set_variant(v: int) -> int:
    """For tests: run kernel variant ``v`` (0 generic, 1 AVX2 + FMA, 2 AVX-512, -1 the
    best this CPU has); returns the variant now running."""
    if _cphm is None:
        raise RuntimeError("the C composition (_cphm) was not built")
    return _cphm.set_variant(v)


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return compiler is not None and hasattr(compiler, "is_compiling") and \
        compiler.is_compiling()


def handles(algebra: Tensor, filters: Tensor) -> bool:
    """Whether :func:`compose` runs the C kernel for these factors."""
    for t in (algebra, filters):
        if type(t) not in _PLAIN or t.device.type != "cpu" or t.dtype not in _DTYPES \
                or not t.is_contiguous() or is_functorch_wrapped_tensor(t) \
                or fwAD.unpack_dual(t).tangent is not None:
            return False
    return (algebra.dtype == filters.dtype and filters.numel() > 0
            and algebra.shape[0] <= MAX_N
            and not torch._C._is_torch_function_mode_enabled() and not _compiling()
            and kernel_available())


def compose(algebra: Tensor, filters: Tensor) -> Tensor:
    """W = sum_s kron(A_s, F_s): the C kernel where :func:`handles` allows, else torch."""
    if handles(algebra, filters):
        return _Compose.apply(algebra, filters)
    return compose_torch(algebra, filters)


def _sizes(filters: Tensor) -> tuple[int, int, int]:
    n, o = filters.shape[0], filters.shape[1]
    return n, o, filters[0, 0].numel()


def _compose_c(algebra: Tensor, filters: Tensor) -> Tensor:
    n, o, length = _sizes(filters)
    w = torch.empty(n * o, n * filters.shape[2], *filters.shape[3:], dtype=filters.dtype)
    _cphm.compose_at(algebra.data_ptr(), filters.data_ptr(), w.data_ptr(),
                     filters.dtype == torch.float64, n, o, length, torch.get_num_threads())
    return w


def _grads_c(algebra: Tensor, filters: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    n, o, length = _sizes(filters)
    ga, gf = torch.empty_like(algebra), torch.empty_like(filters)
    _cphm.compose_grad_at(algebra.data_ptr(), filters.data_ptr(), grad.data_ptr(),
                          ga.data_ptr(), gf.data_ptr(), filters.dtype == torch.float64, n, o,
                          length, torch.get_num_threads())
    return ga, gf


def _grad_fits(grad: Tensor, algebra: Tensor, filters: Tensor) -> bool:
    n, o, length = _sizes(filters)
    return (type(grad) in _PLAIN and grad.device.type == "cpu" and grad.dtype == filters.dtype
            and grad.is_contiguous() and grad.numel() == n * o * n * length)


class _Compose(torch.autograd.Function):
    """compose_torch's value and gradients, by the C kernel (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, algebra: Tensor, filters: Tensor) -> Tensor:
        ctx.save_for_backward(algebra, filters)
        return _compose_c(algebra, filters)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        algebra, filters = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward autograd can follow
            ga, gf = grads_torch(algebra, filters, grad)
        else:
            if not _grad_fits(grad, algebra, filters):
                grad = grad.to(filters.dtype).contiguous()
            ga, gf = _grads_c(algebra, filters, grad)
        return (ga if ctx.needs_input_grad[0] else None,
                gf if ctx.needs_input_grad[1] else None)


def _check_kernel() -> bool:
    """The kernel against the torch ops in float64 on odd sizes (n = 3 and 4; every
    branch: groups of vectors, single vectors, scalar tails), forward and backward."""
    gen = torch.Generator().manual_seed(0)
    ok = True
    for n, o, i, taps in ((3, 5, 7, (3,)), (4, 2, 33, ()), (4, 3, 70, ()), (1, 4, 5, (2, 2))):
        a = torch.randn(n, n, n, dtype=torch.float64, generator=gen)
        f = torch.randn(n, o, i, *taps, dtype=torch.float64, generator=gen)
        w = compose_torch(a, f)
        g = torch.randn(w.shape, dtype=torch.float64, generator=gen)
        ga, gf = grads_torch(a, f, g)
        ca, cf = _grads_c(a, f, g)
        for got, want in ((_compose_c(a, f), w), (ca, ga), (cf, gf)):
            ok = ok and bool(torch.allclose(got, want, rtol=1e-12, atol=1e-12))
    if not ok:  # pragma: no cover - a miscompiled kernel
        warnings.warn("signalprop: the C PH composition failed its check against torch ops; "
                      "using torch ops", RuntimeWarning, stacklevel=3)
    return ok
