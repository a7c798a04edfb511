"""OrthoConv2d: an exactly orthogonal circular convolution, built by products of block
convolutions (``construction="bcop"``, :mod:`._bcop`) or by the Cayley transform of the
kernel's Fourier matrices (``construction="cayley"``, :mod:`._cayley` and
:mod:`._spectral`)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.utils import _pair

from signalprop._fourier import frequency_matrices, polyphase_kernel
from signalprop.nn.orthogonal import _bcop, _spectral
from signalprop.nn.orthogonal._cayley import cayley
from signalprop.theory.orthogonal import orthogonal_conv_exists

CONSTRUCTIONS = ("bcop", "cayley")


class OrthoConv2d(nn.Module):
    """An orthogonal 2-D convolution with circular padding, with :class:`torch.nn.Conv2d`'s
    signature.

    Orthogonal for every input size (a multiple of the stride): its singular values are
    all 1 up to rounding. With M output and C input channels and stride S the operator has
    orthonormal columns when M >= C S^2 (an isometry: ||y|| = ||x|| for every input, so
    the mean squared activation is kept) and orthonormal rows when M < C S^2 (its
    transpose is an isometry: the output keeps the part of ||x||^2 in an M / (C S^2)
    fraction of the directions, on average that fraction of it). Means are not removed:
    a constant input is rotated, not centred. The bias starts at 0.

    Configurations where Achour, Malgouyres & Mamalet's Theorem 4 says no orthogonal
    convolution with this kernel size exists (e.g. a 1 x 1 stride-2 shortcut to more
    channels) are refused with the theorem's reason.

    Two constructions:

    * ``"bcop"`` (default): the kernel is a product of block convolutions (an orthogonal
      1 x 1 kernel and 2-tap kernels [P, I - P] with orthogonal projectors P; Xiao et al.
      2018, Li et al. 2019), composed once per call from c x c matrices, c = max(M, C S^2)
      per group, and applied as one ``conv2d``: a step costs that convolution plus the
      composition (c^3 multiply-adds per tap of every intermediate kernel: 21 c^3 for
      3 x 3, about 2 k^3 c^3 / 3 for k x k; whatever the batch and image size). The
      operator is a convolution of finite support: kh x kw with stride 1;
      with stride S the input's S x S blocks are moved into channels (space-to-depth, an
      orthogonal map) and the kernel covers the blocks the stride-S window reads (a 3 x 3
      stride-2 layer: 2 x 2 taps on the half-size grid, a 4 x 4 footprint on the input).
      Parameters: ``ortho`` (G, c, c) and ``proj_h`` / ``proj_w`` (G, taps - 1, c, c // 2;
      None for one tap or c = 1), unconstrained (orthonormalized by QR). Not every
      orthogonal convolution of that support is reachable (the projectors have rank
      c // 2, and in 2-D not every orthogonal convolution factors into one-axis blocks).
    * ``"cayley"``: the Cayley transform of the parameter ``weight``'s Fourier matrices
      (Trockman & Kolter 2021); the realized operator spans the whole input (``weight``
      sets the support of the parameter, not of the operator; ``weight = 0`` gives the
      identity-like map [I; 0] per frequency). Cost (training): with r = min(M, C S^2) per
      group and F = N1 (N2 / 2 + 1) frequencies, one batched LU (F r^3 / 3 complex
      multiply-adds) per call and about 3 F r^2 B for the batch's solves, plus FFTs; without
      weight gradients the orthogonal matrices are cached. Kernels whose taps land on one
      polyphase position run as a 1 x 1 convolution.

    Args:
        in_channels: C, as for :class:`torch.nn.Conv2d`.
        out_channels: M.
        kernel_size: the window (one integer or two).
        stride: S (one integer or two); the input size must be a multiple of it.
        padding: ``"same"`` (default) or the integer equivalent (dilation (k - 1) / 2);
            the output is the input divided by the stride.
        dilation: spacing of the taps.
        groups: channel groups (each group is orthogonal).
        bias: add a learnable bias (starts at 0).
        padding_mode: must be ``"circular"`` (the orthogonality theorem's boundary).
        device: as for :class:`torch.nn.Conv2d`.
        dtype: as for :class:`torch.nn.Conv2d`.
        construction: ``"bcop"`` or ``"cayley"`` (above).

    Examples:
        >>> conv = OrthoConv2d(8, 32, 3, stride=2, bias=False)  # M = C S^2: square
        >>> x = torch.randn(2, 8, 16, 16)
        >>> y = conv(x)
        >>> y.shape, round((y.norm() / x.norm()).item(), 4)  # an isometry
        (torch.Size([2, 32, 8, 8]), 1.0)
        >>> cay = OrthoConv2d(8, 32, 3, stride=2, bias=False, construction="cayley")
        >>> round((cay(x).norm() / x.norm()).item(), 4)
        1.0

    References:
        Li, Haghifam, Grosse & Jacobsen (BCOP), "Preventing gradient attenuation in
        Lipschitz constrained convolutional networks", NeurIPS 2019; Xiao et al.,
        "Dynamical isometry and a mean field theory of CNNs", ICML 2018; Trockman & Kolter,
        "Orthogonalizing convolutional layers with the Cayley transform", ICLR 2021;
        Achour, Malgouyres & Mamalet, JMLR 2022 (Theorem 4).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1, padding: str | int | tuple[int, int] = "same",
        dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True,
        padding_mode: str = "circular", device: Any = None, dtype: Any = None,
        construction: str = "bcop",
    ) -> None:
        super().__init__()
        if construction not in CONSTRUCTIONS:
            raise ValueError(f"construction={construction!r} is not allowed; valid: "
                             f"{', '.join(CONSTRUCTIONS)}")
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
        self.case, self.construction = ex.case, construction
        self._taps_cache: dict[Any, _spectral.Taps] = {}
        self._operator_cache: tuple[Any, Tensor] | None = None
        kw = {"device": device, "dtype": dtype}
        if construction == "cayley":
            self.register_parameter("weight", nn.Parameter(torch.empty(
                out_channels, in_channels // groups, *k, **kw)))
        else:
            self._setup_bcop(kw)
        self.bias = nn.Parameter(torch.empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def _setup_bcop(self, kw: dict[str, Any]) -> None:
        g = self.groups
        cin = self.in_channels // g * self.stride[0] * self.stride[1]
        c = max(self.out_channels // g, cin)
        # per axis: (first offset, taps, dilation) of the kernel on the space-to-depth grid
        self._bcop_axes = tuple(
            (-p, k, d) if s == 1 else (*_bcop.footprint(k, s, d), 1)
            for k, s, d, p in zip(self.kernel_size, self.stride, self.dilation, self.padding))
        (_, th, _), (_, tw, _) = self._bcop_axes
        self.ortho = nn.Parameter(torch.empty(g, c, c, **kw))
        for name, taps in (("proj_h", th), ("proj_w", tw)):  # none for one tap or c = 1
            self.register_parameter(name, nn.Parameter(torch.empty(
                g, taps - 1, c, c // 2, **kw)) if taps > 1 and c > 1 else None)

    def reset_parameters(self) -> None:
        """Cayley: the weight as :class:`torch.nn.Conv2d` draws it. BCOP: Gaussian matrices
        (a Haar-random orthogonal H and uniformly random projectors). Bias 0."""
        if self.construction == "cayley":
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        else:
            for p in (self.ortho, self.proj_h, self.proj_w):
                if p is not None:
                    nn.init.normal_(p)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    @property
    def weight(self) -> Tensor:
        """Cayley: the parameter. BCOP: the kernel of the same layer written as a strided
        circular ``conv2d`` of the input, (M, C / G, S th, S tw) with its autograd graph,
        composed on each access (so code that reads ``conv.weight`` as nn.Conv2d's, e.g.
        for its dtype, works)."""
        if self.construction == "cayley":
            if "weight" not in self._parameters:
                raise AttributeError("weight")  # not registered yet (construction)
            return self._parameters["weight"]
        return self._equivalent_kernel()[0]

    # ------------------------------------------------------------------ BCOP

    def conv_weight(self) -> Tensor:
        """BCOP: the (M, C S^2 / G, th, tw) kernel the layer applies (with circular
        padding) to the space-to-depth input, with its autograd graph.

        Examples:
            >>> OrthoConv2d(4, 8, 3).conv_weight().shape
            torch.Size([8, 4, 3, 3])
        """
        if self.construction != "bcop":
            raise ValueError("conv_weight() is the kernel of construction='bcop'; a 'cayley' "
                             "layer's operator spans the whole input (frequency_matrices())")
        taps = tuple(t for _, t, _ in self._bcop_axes)
        centre = tuple(min(max(-lo, 0), t - 1) for lo, t, _ in self._bcop_axes)  # offset 0
        k = _bcop.compose_kernel(self.ortho, self.proj_h, self.proj_w, taps, centre)
        g, mg = self.groups, self.out_channels // self.groups
        cin = self.in_channels // g * self.stride[0] * self.stride[1]
        k = k[..., :mg, :cin].permute(0, 3, 4, 1, 2)
        return k.reshape(self.out_channels, cin, *k.shape[-2:])

    def _bcop_forward(self, x: Tensor, frozen: bool) -> Tensor:
        weight = self._cached(self.conv_weight) if frozen else self.conv_weight()
        pads = []
        for lo, taps, d in reversed(self._bcop_axes):  # F.pad lists the last axis first
            pads += [-lo, d * (taps - 1) + lo]
        x = _bcop.circular_pad(x, tuple(pads))
        dil = tuple(d for _, _, d in self._bcop_axes)
        return F.conv2d(x, weight.to(x.dtype), None, 1, 0, dil, self.groups)

    def _equivalent_kernel(self) -> tuple[Tensor, tuple[int, int], tuple[int, int]]:
        """BCOP: the layer as a strided circular conv of the input (kernel, dilation,
        offset of tap 0) -- space-to-depth folded back into the taps."""
        w = self.conv_weight()
        (sh, sw), (th, tw) = self.stride, w.shape[-2:]
        w = w.reshape(self.out_channels, -1, sh, sw, th, tw).permute(0, 1, 4, 2, 5, 3)
        w = w.reshape(self.out_channels, -1, th * sh, tw * sw)
        dil = tuple(d for _, _, d in self._bcop_axes)
        offset = tuple(lo * s for (lo, _, _), s in zip(self._bcop_axes, self.stride))
        return w, dil, offset

    # ------------------------------------------------------------------ both

    def frequency_matrices(self, input_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The orthogonal matrices Q(u) the layer applies at the half-spectrum frequencies of
        a (H, W) input: ((G, F, M / G, C S^2 / G) complex, (F,) multiplicities)."""
        if self.construction == "bcop":
            grid = self._grid(input_size)
            w, dil, offset = self._equivalent_kernel()
            kernel = polyphase_kernel(w, self.stride, dil, offset, grid)
            mats, mult = frequency_matrices(kernel, self.groups)
            # frequency_matrices takes the DFT of the taps, the symbol of the convolution
            # with them; conv2d cross-correlates, whose symbol at u is the conjugate
            return mats.conj(), mult
        mats, mult = self._kernel_spectrum(input_size)
        return cayley(mats), mult

    def _grid(self, input_size: tuple[int, int]) -> tuple[int, int]:
        h, w = (int(v) for v in input_size)
        if h % self.stride[0] or w % self.stride[1]:
            raise ValueError(f"OrthoConv2d with stride {self.stride} needs an input whose "
                             f"height and width are multiples of it, got {h} x {w}")
        return h // self.stride[0], w // self.stride[1]

    def _cached(self, build: Any, extra: Any = None) -> Tensor:
        """build() without gradients, kept until a parameter or ``extra`` changes (the
        parameters' version counters, bumped by every in-place update, are in the key)."""
        key = (extra, *((p._version, p.data_ptr(), p.dtype, p.device)
                        for p in self.parameters() if p is not self.bias))
        if self._operator_cache is None or self._operator_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # usable with autograd
                self._operator_cache = (key, build())
        return self._operator_cache[1]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3 and x.shape[0] == self.in_channels:  # unbatched, as nn.Conv2d takes
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"OrthoConv2d expects (B, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W) input, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        grid = self._grid((h, w))
        if b == 0:  # the FFT refuses empty batches; the layer maps none to none
            return x.new_zeros(0, self.out_channels, *grid)
        (sh, sw) = self.stride
        if (sh, sw) != (1, 1):  # space-to-depth: channel c sh sw + rh sw + rw
            x = x.reshape(b, c, grid[0], sh, grid[1], sw).permute(0, 1, 3, 5, 2, 4)
            x = x.reshape(b, c * sh * sw, *grid)
        frozen = not (torch.is_grad_enabled() and any(
            p.requires_grad for p in self.parameters() if p is not self.bias))
        if self.construction == "bcop":
            y = self._bcop_forward(x, frozen)
        else:
            y = self._cayley_forward(x, grid, frozen)
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return y

    # ------------------------------------------------------------------ Cayley

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
        """cayley(W) at every frequency, kept until the weight changes."""
        return self._cached(lambda: _spectral.operator(*self._system(t)), grid)

    def _cayley_forward(self, x: Tensor, grid: tuple[int, int], frozen: bool) -> Tensor:
        b, g = x.shape[0], self.groups
        t = self._taps(grid)
        if t.constant:  # the same real matrix at every frequency: a 1 x 1 convolution
            q = self._frozen_operator(grid, t) if frozen else _spectral.operator(
                *self._system(t))
            return F.conv2d(x, q.reshape(self.out_channels, -1, 1, 1).to(x.dtype), groups=g)
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
        return torch.fft.irfft2(out, s=grid)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}, case={self.case!r}, "
                f"construction={self.construction!r}")
