"""A convolution layer as a linear operator: kernel, geometry, and float64 products.

Every supported layer is described by one :class:`ConvOperator`: the kernel of a plain
(unpadded, strided, dilated, grouped) cross-correlation applied after padding its input.
A transposed convolution is the adjoint of such a convolution (PyTorch defines it as the
input gradient of one), and an operator and its adjoint have the same singular values, so
``ConvTranspose`` layers are described by the convolution they are the adjoint of. The
bias does not enter: singular values are those of the linear part.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.measure._nonfinite import NonFiniteError
from signalprop.nn._kernel import effective_kernel, nonlinear_input

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MODES = ("zeros", "circular", "reflect", "replicate")


@dataclass
class ConvOperator:
    """x (C, *n) -> conv(pad(x)) (M, *out): the operator whose singular values are wanted.

    Attributes:
        weight: (M, C / groups, *k) float64 kernel (cross-correlation, as in PyTorch).
        stride, dilation: per spatial axis.
        pad: (left, right) padding per spatial axis.
        mode: padding mode ("zeros", "circular", "reflect", "replicate").
        groups: channel groups.
        in_shape: (C, *n) of the operator's input.
        out_shape: (M, *out) of its output.
        transposed: the layer applies the adjoint of this operator (ConvTranspose).
    """

    weight: Tensor
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad: tuple[tuple[int, int], ...]
    mode: str
    groups: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    transposed: bool = False

    @property
    def d(self) -> int:
        return self.weight.dim() - 2

    @property
    def rows(self) -> int:
        return math.prod(self.out_shape)

    @property
    def cols(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_values(self) -> int:
        return min(self.rows, self.cols)

    def apply(self, x: Tensor) -> Tensor:
        """(B, C, *n) -> (B, M, *out) in the weight's dtype."""
        if any(lr != (0, 0) for lr in self.pad):
            flat = [p for lr in reversed(self.pad) for p in lr]
            x = F.pad(x, flat, mode="constant" if self.mode == "zeros" else self.mode)
        return _CONV[self.d](x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def _size(s: Any) -> int:
    """An integer size (Python or NumPy/torch integer); anything else raises ValueError."""
    if isinstance(s, bool) or not isinstance(s, numbers.Integral):
        if not (isinstance(s, torch.Tensor) and s.dim() == 0 and not s.is_floating_point()
                and s.dtype != torch.bool):
            raise ValueError
    return int(s)


def per_example(input_shape: Any, d: int, what: str) -> tuple[int, ...]:
    try:
        shape = tuple(_size(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of integer sizes, got "
                         f"{input_shape!r}") from None
    if len(shape) == d + 2:
        shape = shape[1:]  # a batch axis first: ignored
    if len(shape) != d + 1 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, {', '.join(['n'] * d)}) or with a batch "
                         f"axis first, positive sizes, for {what}; got {tuple(input_shape)}")
    return shape


def _check_kind(conv: nn.Module) -> None:
    if not isinstance(conv, nn.modules.conv._ConvNd):
        raise ValueError(f"conv must be a torch.nn convolution (Conv1d/2d/3d, ConvTranspose"
                         f"1d/2d/3d or a subclass such as ScaledStdConv2d or QuantConv2d) or "
                         f"an OrthoConv2d, got {type(conv).__name__}")
    if isinstance(conv, nn.modules.lazy.LazyModuleMixin) and conv.has_uninitialized_params():
        raise ValueError(f"{type(conv).__name__} has uninitialized (lazy) parameters; run "
                         "one forward first")
    if conv.weight.is_meta:
        raise ValueError(f"{type(conv).__name__}'s weight is on the meta device (no values); "
                         "materialize the layer first (e.g. module.to_empty(device='cpu') "
                         "and load its weights)")
    why = nonlinear_input(conv)
    if why is not None:
        raise ValueError(f"{type(conv).__name__} with {why} is not a linear map, so it has no "
                         "singular values; conv_spectrum measures layers with act_levels=None "
                         "(their quantized kernel)")
    if conv.padding_mode not in MODES:
        raise ValueError(f"padding_mode {conv.padding_mode!r} is not supported; valid: "
                         f"{', '.join(MODES)}")


def effective_weight(conv: nn.Module) -> Tensor:
    """The kernel the layer applies (Scaled WS layers standardize theirs, quantized layers
    quantize it: :func:`signalprop.nn._kernel.effective_kernel`), float64."""
    with torch.no_grad():
        return effective_kernel(conv).detach().to(torch.float64, copy=True)


def conv_operator(conv: nn.Module, input_shape: Any) -> ConvOperator:
    """Describe ``conv`` applied to one example of ``input_shape`` as a :class:`ConvOperator`.

    Raises:
        ValueError: an unsupported module or padding mode, a bad or too small input shape,
            channels that do not match.
        NonFiniteError: the kernel holds NaN/Inf.
    """
    _check_kind(conv)
    d = len(conv.kernel_size)
    what = f"{type(conv).__name__}(kernel_size={tuple(conv.kernel_size)})"
    shape = per_example(input_shape, d, what)
    w = effective_weight(conv)
    # a finite sum has finite terms (inf and NaN propagate); only an overflowing sum needs
    # the elementwise check, several times slower on large kernels
    if not bool(torch.isfinite(w.sum())) and not bool(torch.isfinite(w).all()):
        raise NonFiniteError(f"the kernel of {what} holds NaN/Inf")
    k, s, dil = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
    if conv.in_channels != shape[0]:
        raise ValueError(f"{what} takes {conv.in_channels} input channels, but input_shape "
                         f"{shape} has {shape[0]}")
    n = shape[1:]
    if conv.transposed:
        p, op = tuple(conv.padding), tuple(conv.output_padding)
        out_n = tuple((ni - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
                      for ni, si, pi, di, ki, oi in zip(n, s, p, dil, k, op))
        if min(out_n) < 1:
            raise ValueError(f"{what} gives an empty output for input_shape {shape}")
        # the adjoint conv maps the ConvTranspose's output (out_channels, *out_n) back
        return ConvOperator(w, s, dil, tuple((pi, pi) for pi in p), "zeros", conv.groups,
                            (conv.out_channels, *out_n), shape, transposed=True)
    rp = conv._reversed_padding_repeated_twice
    pad = tuple((rp[2 * (d - 1 - j)], rp[2 * (d - 1 - j) + 1]) for j in range(d))
    out_n = tuple((ni + lr[0] + lr[1] - di * (ki - 1) - 1) // si + 1
                  for ni, lr, di, ki, si in zip(n, pad, dil, k, s))
    if min(out_n) < 1:
        raise ValueError(f"input_shape {shape} is smaller than the receptive field of {what} "
                         f"(padding {[list(p) for p in pad]}, dilation {list(dil)})")
    if conv.padding_mode != "zeros" and any(max(lr) > ni for lr, ni in zip(pad, n)):
        raise ValueError(f"{conv.padding_mode} padding {[list(p) for p in pad]} is larger than "
                         f"the input {n} of {what}")
    return ConvOperator(w, s, dil, pad, conv.padding_mode, conv.groups, shape,
                        (conv.out_channels, *out_n))


def _input_index(op: ConvOperator, axis: int) -> Tensor:
    """(out, k) input position each output reads with each tap on ``axis``; -1 for a
    zero (padding) read."""
    n, o, k = op.in_shape[1 + axis], op.out_shape[1 + axis], op.weight.shape[2 + axis]
    left, right = op.pad[axis]
    padded = (op.stride[axis] * torch.arange(o).reshape(-1, 1)
              + op.dilation[axis] * torch.arange(k).reshape(1, -1))  # index into pad(x)
    if op.mode == "zeros":
        src = torch.arange(-left, n + right)
        src[(src < 0) | (src >= n)] = -1
    else:
        src = F.pad(torch.arange(n, dtype=torch.float64).reshape(1, 1, n), (left, right),
                    mode=op.mode).flatten().to(torch.long)
    return src[padded]


def dense_matrix(op: ConvOperator) -> Tensor:
    """The (rows, cols) float64 matrix of the operator, written from the kernel directly:
    entry (m * O + o, c * I + i) adds every tap of channel pair (m, c) that output o reads
    from input position i (O, I: output and input positions)."""
    m, cg, *k = op.weight.shape
    d = len(k)
    idx = [_input_index(op, j) for j in range(d)]
    # all (output position, tap) pairs, flattened in C order; input position or -1
    grids = torch.meshgrid(*[torch.arange(op.out_shape[1 + j]) for j in range(d)],
                           *[torch.arange(k[j]) for j in range(d)], indexing="ij")
    o_flat = torch.zeros_like(grids[0])
    a_flat = torch.zeros_like(grids[0])
    i_flat = torch.zeros_like(grids[0])
    valid = torch.ones_like(grids[0], dtype=torch.bool)
    for j in range(d):
        o_j, a_j = grids[j], grids[d + j]
        i_j = idx[j][o_j, a_j]
        valid &= i_j >= 0
        o_flat = o_flat * op.out_shape[1 + j] + o_j
        a_flat = a_flat * k[j] + a_j
        i_flat = i_flat * op.in_shape[1 + j] + i_j.clamp_min(0)
    o_flat, a_flat, i_flat = o_flat[valid], a_flat[valid], i_flat[valid]
    out_pos, in_pos = math.prod(op.out_shape[1:]), math.prod(op.in_shape[1:])
    a = torch.zeros(m, out_pos, op.in_shape[0], in_pos, dtype=torch.float64)
    rows = torch.arange(m).reshape(-1, 1, 1)
    chans = ((rows // (m // op.groups)) * cg + torch.arange(cg).reshape(1, -1, 1))
    vals = op.weight.reshape(m, cg, -1)[:, :, a_flat]  # (M, Cg, pairs)
    a.index_put_((rows, o_flat.reshape(1, 1, -1), chans, i_flat.reshape(1, 1, -1)), vals,
                 accumulate=True)
    return a.reshape(op.rows, op.cols)


class Products:
    """A @ v and A^T u for the operator, on flat float64 vectors.

    The adjoint of a zero-padded convolution with the same padding on both sides is a
    transposed convolution (PyTorch defines it as that input gradient); otherwise (copied
    borders, asymmetric padding) it is the input gradient taken on a graph built once.
    """

    def __init__(self, op: ConvOperator) -> None:
        self.op = op
        self._pad = tuple(left for left, _ in op.pad)
        self._direct = op.mode == "zeros" and all(lr[0] == lr[1] for lr in op.pad)
        if self._direct:  # the input size the transposed convolution must give back
            self._extra = tuple(
                n - ((o - 1) * s - 2 * p + dil * (k - 1) + 1)
                for n, o, s, p, dil, k in zip(op.in_shape[1:], op.out_shape[1:], op.stride,
                                              self._pad, op.dilation, op.weight.shape[2:]))
            return
        self._x = torch.zeros((1, *op.in_shape), dtype=torch.float64, requires_grad=True)
        with torch.enable_grad():
            self._y = op.apply(self._x)

    def forward(self, v: Tensor) -> Tensor:
        """(B, cols) -> (B, rows)."""
        with torch.no_grad():
            return self.op.apply(v.reshape(-1, *self.op.in_shape)).reshape(v.shape[0], -1)

    def adjoint(self, u: Tensor) -> Tensor:
        """(B, rows) -> (B, cols) (B = 1 unless the adjoint is a transposed convolution)."""
        op = self.op
        if self._direct:
            with torch.no_grad():
                x = _CONV_T[op.d](u.reshape(-1, *op.out_shape), op.weight, None, op.stride,
                                  self._pad, self._extra, op.groups, op.dilation)
            return x.reshape(u.shape[0], -1)
        g = torch.autograd.grad(self._y, self._x, u.reshape(self._y.shape), retain_graph=True)
        return g[0].reshape(1, -1)
