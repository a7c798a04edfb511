"""The binary weight quantizer on contiguous CPU tensors in C (``_cquant.c``).

Q(w) = alpha sign(w) with alpha = mean|w| or rms(w) per tensor or per output channel, and
its BinaryConnect gradient with the straight-through or clipped estimator, each in two
passes over the weights (torch ops take five forward and seven backward: the sign, the
scale, the product; the dot product, two element-wise updates). Sums are taken in float
runs folded into doubles, so alpha is at least as accurate as torch's reduction (and
closer to the exact value than ``torch.linalg.vector_norm(w, 1)``, whose float32 sum
loses about 1e-5 on a 512 x 512 matrix); the results then agree with the torch path to
rounding, not bit for bit.

Everything else (accelerators, half precision, non-contiguous weights or gradients,
other estimators, ``create_graph=True``, ``torch.compile``) goes through torch ops, as
does everything when the extension was not built.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

try:  # built from _cquant.c at install; optional
    from signalprop.nn.quantized import _cquant
except ImportError:  # pragma: no cover - depends on the build
    _cquant = None

_DTYPES = (torch.float32, torch.float64)
# the estimators whose derivative is a 0/1 mask on |w| <= limit (ste: no limit)
_MASK_LIMITS = {"ste": lambda p: math.inf, "clipped": lambda p: float(p["limit"])}


def fused_available() -> bool:
    """Whether the C quantizer was built (it is used where :func:`handles` allows)."""
    return _cquant is not None


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return compiler is not None and hasattr(compiler, "is_compiling") and \
        compiler.is_compiling()


def handles(w: Tensor, estimator: str, scale: str | None) -> bool:
    """Whether the C kernel computes this quantizer (forward and, unless a graph of the
    backward is wanted, backward)."""
    return (_cquant is not None and w.device.type == "cpu" and w.dtype in _DTYPES
            and estimator in _MASK_LIMITS and scale in ("mean_abs", "rms")
            and w.numel() > 0 and w.is_contiguous() and not _compiling())


def binary_forward(w: Tensor, scale: str, whole: bool) -> tuple[Tensor, Tensor]:
    """(Q(w), alpha): alpha 0-d for one scale (``whole``), else (C_out, 1, ..., 1)."""
    q = torch.empty_like(w, memory_format=torch.contiguous_format)
    rows = 1 if whole else w.shape[0]
    alpha = torch.empty(() if whole else (rows,) + (1,) * (w.ndim - 1), dtype=w.dtype)
    _cquant.binary_forward(w.detach().numpy(), q.numpy(), alpha.numpy(), rows,
                           1 if scale == "mean_abs" else 2, torch.get_num_threads())
    return q, alpha


def binary_backward(grad: Tensor, w: Tensor, alpha: Tensor, scale: str, estimator: str,
                    params: dict[str, float]) -> Tensor | None:
    """dL/dw, or None where the torch ops must do it (a layout the kernel does not read,
    or a graph of the backward to record)."""
    if torch.is_grad_enabled() or not grad.is_contiguous() or grad.dtype != w.dtype \
            or grad.shape != w.shape:
        return None
    out = torch.empty_like(w, memory_format=torch.contiguous_format)
    _cquant.binary_backward(grad.numpy(), w.detach().numpy(), alpha.numpy(), out.numpy(),
                            alpha.numel(), 1 if scale == "mean_abs" else 2,
                            _MASK_LIMITS[estimator](params), torch.get_num_threads())
    return out
