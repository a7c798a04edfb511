"""An exactly orthogonal circular convolution: the Cayley transform in the Fourier domain
(Trockman & Kolter, "Orthogonalizing convolutional layers with the Cayley transform",
ICLR 2021).

A circular convolution is, at each frequency u, multiplication by a matrix W(u) (the DFT
of the kernel; strided layers by their polyphase kernel, :mod:`signalprop._fourier`). The
layer replaces W(u) by its Cayley transform Q(u), which has orthonormal columns (or rows),
and so applies an orthogonal operator to every input of any size.

For a tall matrix W = [U; V] (m >= n, U the top n x n block), let
S = U - U^H + V^H V. The Cayley transform (I - A)(I + A)^{-1} of the skew-Hermitian
A = [[U - U^H, -V^H], [V, 0]], restricted to its first n columns, works out to

    Q = [(I + S)^{-1} (I - S); -2 V (I + S)^{-1}],

one n x n solve (I + S is invertible: its Hermitian part I + V^H V is positive definite).
A wide W is transformed through its conjugate transpose. Real kernels give conjugate
matrices at opposite frequencies, so Q does too and the layer is real.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair

from signalprop._fourier import frequency_matrices, polyphase_kernel
from signalprop.nn.orthogonal import _spectral
from signalprop.theory.orthogonal import orthogonal_conv_exists


def cayley(w: Tensor) -> Tensor:
    """Cayley transform of a batch of complex (..., m, n) matrices: orthonormal columns
    (m >= n) or rows (m < n).

    Examples:
        >>> q = cayley(torch.randn(5, 6, 3, dtype=torch.complex128))
        >>> eye = torch.eye(3, dtype=torch.complex128)
        >>> bool(torch.allclose(q.mH @ q, eye.expand(5, 3, 3), atol=1e-12))
        True
    """
    m, n = w.shape[-2:]
    if m < n:
        return cayley(w.mH).mH
    u, v = w[..., :n, :], w[..., n:, :]
    eye = torch.eye(n, dtype=w.dtype, device=w.device)
    s = u - u.mH + v.mH @ v
    inv = torch.linalg.solve(eye + s, eye.expand_as(s))
    return torch.cat([2 * inv - eye, -2 * v @ inv], dim=-2)


def cayley_apply(w: Tensor, x: Tensor) -> Tensor:
    """``cayley(w) @ x`` without forming the Cayley matrix: one solve with the columns of
    x as right-hand sides (cheaper than the inverse when x has fewer columns than w's
    smaller side, and never more expensive).

    For a wide w (m < n) the transform goes through w^H: with S built from w^H's blocks and
    x = [x1; x2] (m and n - m rows), cayley(w) x = 2 (I + S^H)^{-1} (x1 - V^H x2) - x1.

    Examples:
        >>> w = torch.randn(4, 3, 5, dtype=torch.complex128)
        >>> x = torch.randn(4, 5, 2, dtype=torch.complex128)
        >>> bool(torch.allclose(cayley_apply(w, x), cayley(w) @ x))
        True
    """
    m, n = w.shape[-2:]
    if m >= n:
        u, v = w[..., :n, :], w[..., n:, :]
        eye = torch.eye(n, dtype=w.dtype, device=w.device)
        z = torch.linalg.solve(eye + u - u.mH + v.mH @ v, x)
        return torch.cat([2 * z - x, -2 * v @ z], dim=-2)
    wt = w.mH
    u, v = wt[..., :m, :], wt[..., m:, :]
    eye = torch.eye(m, dtype=w.dtype, device=w.device)
    s = u - u.mH + v.mH @ v
    x1 = x[..., :m, :]
    z = torch.linalg.solve(eye + s.mH, x1 - v.mH @ x[..., m:, :])
    return 2 * z - x1


class OrthoConv2d(nn.Module):
    """An orthogonal 2-D convolution with circular padding (Cayley transform of the
    kernel's Fourier matrices), with :class:`torch.nn.Conv2d`'s signature.

    Orthogonal for every input size (a multiple of the stride): its singular values are
    all 1 up to rounding. With M output and C input channels and stride S the operator has
    orthonormal columns when M >= C S^2 (an isometry: ||y|| = ||x|| for every input, so
    the mean squared activation is kept) and orthonormal rows when M < C S^2 (its
    transpose is an isometry: the output keeps the part of ||x||^2 in an M / (C S^2)
    fraction of the directions, on average that fraction of it). Means are not removed:
    a constant input is rotated, not centred. The bias starts at 0.

    Configurations where Achour, Malgouyres & Mamalet's Theorem 4 says no orthogonal
    convolution with this kernel size exists (e.g. a 1 x 1 stride-2 shortcut to more
    channels) are refused with the theorem's reason. NOTE: like every Fourier-domain
    parametrization, the operator realized is a circular convolution whose kernel spans the
    whole input (the Cayley transform does not keep a k x k support); ``kernel_size`` sets
    the support of the parameter ``weight`` (the layer is the identity-like map [I; 0] per
    frequency when ``weight`` is 0).

    Cost (training): with r = min(M, C S^2) per group and F = N1 (N2 / 2 + 1) frequencies
    of the N1 x N2 polyphase grid, the Cayley systems are built from the taps (F x k^2 x r^2)
    and factored once per call (one batched LU: F r^3 / 3 complex multiply-adds, whatever
    the batch B); the batch goes through them as right-hand sides (solve, and in the
    backward a solve and an outer product: about 3 F r^2 B), plus an FFT of the input and
    one of the output each way. The orthogonal matrices are never formed. Without
    gradients for the weight (eval, ``torch.no_grad``) they are formed once and cached
    until the weight changes, and a call costs two FFTs and one batched product. Kernels
    whose taps all land on one polyphase position (1 x 1, or kernel = stride) give the same
    real matrix at every frequency: a 1 x 1 convolution, no FFT.

    Args:
        in_channels: C, as for :class:`torch.nn.Conv2d`.
        out_channels: M.
        kernel_size: support of the parameter ``weight`` (one integer or two).
        stride: S (one integer or two); the input size must be a multiple of it.
        dilation: spacing of the parameter's taps.
        groups: channel groups (each group is orthogonal).
        bias: add a learnable bias (starts at 0).
        device: as for :class:`torch.nn.Conv2d`.
        dtype: as for :class:`torch.nn.Conv2d`.
        padding: ``"same"`` (default) or the integer equivalent (dilation (k - 1) / 2);
            the output is the input divided by the stride.
        padding_mode: must be ``"circular"`` (the orthogonality theorem's boundary).

    Examples:
        >>> conv = OrthoConv2d(8, 32, 3, stride=2, bias=False)  # M = C S^2: square
        >>> x = torch.randn(2, 8, 16, 16)
        >>> y = conv(x)
        >>> y.shape, round((y.norm() / x.norm()).item(), 4)  # an isometry
        (torch.Size([2, 32, 8, 8]), 1.0)

    References:
        Trockman & Kolter, "Orthogonalizing convolutional layers with the Cayley
        transform", ICLR 2021; Achour, Malgouyres & Mamalet, JMLR 2022 (Theorem 4).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1, padding: str | int | tuple[int, int] = "same",
        dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
        padding_mode: str = "circular", device: Any = None, dtype: Any = None,
    ) -> None:
        super().__init__()
        k, s, dil = _pair(kernel_size), _pair(stride), _pair(dilation)
        if padding_mode != "circular":
            ex = orthogonal_conv_exists(in_channels, out_channels, k, 1, "zeros",
                                        groups=groups) if padding_mode == "zeros" else None
            why = f" ({ex.reason})" if ex is not None else ""
            raise ValueError(f"OrthoConv2d needs padding_mode='circular', got "
                             f"{padding_mode!r}{why}")
        same = tuple(di * (ki - 1) // 2 for ki, di in zip(k, dil))
        if padding != "same" and _pair(padding) != same:
            raise ValueError(f"padding must be 'same' (= {same} here): the output of an "
                             f"orthogonal circular conv is the input / stride; got {padding!r}")
        ex = orthogonal_conv_exists(in_channels, out_channels, k, s, "circular",
                                    dilation=dil, groups=groups)
        if not ex.exists:
            raise ValueError(f"no orthogonal convolution exists for in_channels="
                             f"{in_channels}, out_channels={out_channels}, kernel_size={k}, "
                             f"stride={s}: {ex.reason}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = k, s, dil
        self.padding, self.padding_mode = same, padding_mode
        self.case = ex.case
        self._taps_cache: dict[Any, _spectral.Taps] = {}
        self._operator_cache: tuple[Any, Tensor] | None = None
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *k, **kw))
        self.bias = nn.Parameter(torch.empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight as :class:`torch.nn.Conv2d` draws it; bias 0."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def frequency_matrices(self, input_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The orthogonal matrices Q(u) the layer applies at the half-spectrum frequencies of
        a (H, W) input: ((G, F, M / G, C S^2 / G) complex, (F,) multiplicities)."""
        mats, mult = self._kernel_spectrum(input_size)
        return cayley(mats), mult

    def _grid(self, input_size: tuple[int, int]) -> tuple[int, int]:
        h, w = (int(v) for v in input_size)
        if h % self.stride[0] or w % self.stride[1]:
            raise ValueError(f"OrthoConv2d with stride {self.stride} needs an input whose "
                             f"height and width are multiples of it, got {h} x {w}")
        return h // self.stride[0], w // self.stride[1]

    def _kernel_spectrum(self, input_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The parameter's (polyphase) Fourier matrices W(u), before the Cayley transform,
        by an FFT of the kernel on the whole grid (the reference the fast path is tested
        against)."""
        grid = self._grid(input_size)
        offset = tuple(-p for p in self.padding)
        kernel = polyphase_kernel(self.weight, self.stride, self.dilation, offset, grid)
        return frequency_matrices(kernel, self.groups)

    def _taps(self, grid: tuple[int, int]) -> _spectral.Taps:
        key = (grid, self.weight.dtype, self.weight.device)
        if key not in self._taps_cache:
            if len(self._taps_cache) >= 8:
                self._taps_cache.clear()
            self._taps_cache[key] = _spectral.taps(
                self.kernel_size, self.stride, self.dilation, tuple(-p for p in self.padding),
                grid, self.weight.dtype, self.weight.device)
        return self._taps_cache[key]

    def _system(self, t: _spectral.Taps) -> tuple[Tensor, Tensor | None, bool]:
        return _spectral.system(self.weight, t, self.stride[0] * self.stride[1], self.groups)

    def _frozen_operator(self, grid: tuple[int, int], t: _spectral.Taps) -> Tensor:
        """cayley(W) at every frequency, kept until the weight changes (its version counter,
        bumped by every in-place update, is part of the key)."""
        wt = self.weight
        key = (grid, wt._version, wt.data_ptr(), wt.dtype, wt.device)
        if self._operator_cache is None or self._operator_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # usable with autograd
                self._operator_cache = (key, _spectral.operator(*self._system(t)))
        return self._operator_cache[1]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3 and x.shape[0] == self.in_channels:  # unbatched, as nn.Conv2d takes
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"OrthoConv2d expects (B, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W) input, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        if b == 0:  # the FFT refuses empty batches; the layer maps none to none
            self._kernel_spectrum((h, w))  # the size check still applies
            return x.new_zeros(0, self.out_channels, h // self.stride[0], w // self.stride[1])
        (sh, sw), g = self.stride, self.groups
        grid = self._grid((h, w))
        if (sh, sw) != (1, 1):  # space-to-depth: channel c sh sw + rh sw + rw
            x = x.reshape(b, c, grid[0], sh, grid[1], sw).permute(0, 1, 3, 5, 2, 4)
            x = x.reshape(b, c * sh * sw, *grid)
        t = self._taps(grid)
        frozen = not (torch.is_grad_enabled() and self.weight.requires_grad)
        if t.constant:  # the same real matrix at every frequency: a 1 x 1 convolution
            q = self._frozen_operator(grid, t) if frozen else _spectral.operator(
                *self._system(t))
            y = F.conv2d(x, q.reshape(self.out_channels, -1, 1, 1).to(x.dtype), groups=g)
        else:
            spec = torch.fft.rfft2(x)  # (B, C', N1, N2 // 2 + 1)
            f = spec.shape[-2] * spec.shape[-1]
            # one 2-D transpose to frequency-major (F, B, C'): the columns of every (C', B)
            # right-hand side are then contiguous (column-major, as the solver wants them)
            xs = spec.reshape(-1, f).t().contiguous().reshape(f, b, g, -1).permute(0, 2, 3, 1)
            if frozen:
                out = self._frozen_operator(grid, t).to(xs.dtype) @ xs
            else:
                a, rest, tall = self._system(t)
                rest = None if rest is None else rest.to(xs.dtype)
                out = _spectral.apply(a.to(xs.dtype), rest, tall, xs)  # (F, G, Mg, B)
            out = out.permute(0, 3, 1, 2).reshape(f, -1).t()  # (B M, F)
            out = out.reshape(b, self.out_channels, grid[0], -1)
            y = torch.fft.irfft2(out, s=grid)
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}, case={self.case!r}")

