"""Parameterized hypercomplex layers: PHM linear (Zhang et al., ICLR 2021) and PH
convolutions (Grassucci, Zhang & Comminiello 2022).

The weight of a layer with ``in`` inputs and ``out`` outputs (and kernel taps ``k``) is

    W = sum_{s=1}^{n} kron(A_s, F_s),    A_s: n x n,   F_s: (out/n) x (in/n) [x k]

(for convolutions the Kronecker product acts on the two channel axes, tap by tap). It
holds n^3 + out * in * prod(k) / n parameters, about 1/n of the dense layer's, and is
composed in one pass (:func:`compose_weight`).

Initialization (``init``):

* ``"fan_in"`` (default): A_s ~ N(0, 1/n) and F_s ~ N(0, gain^2 / fan_in), so every entry
  of the composed W has Var = n * (1/n) * gain^2 / fan_in = gain^2 / fan_in, fan_in =
  in * prod(k) of the composed layer: LeCun for gain 1, He for gain sqrt(2) (ReLU),
  gamma-scaled for gain = ``signalprop.theory.gamma(activation)``. Distinct entries of W
  are uncorrelated (E[W W^T] = gain^2 / fan_in * I over draws), so in expectation over the
  weights a PH layer moves the signal's mean and variance exactly as the dense layer with
  the same weight variance; the entries are not Gaussian (sums of n products).
* ``"xavier_factors"``: Xavier-uniform A (n, n, n) and F (n, out/n, in/n, *k) as separate
  tensors, as the HyperNets / PHYDI reference code does. Then Var(W) * fan_in =
  2n / (out + n^2) (:func:`signalprop.theory.ph_weight_variance`), 0.1 at out = 64, n = 4:
  each layer shrinks the forward second moment about 10-fold (20-fold after a ReLU).

Biases (when present) start at zero.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.nn.hypercomplex import _fused

INITS = ("fan_in", "xavier_factors")


def compose_weight(algebra: Tensor, filters: Tensor) -> Tensor:
    """The PH weight sum_s kron(A_s, F_s) on the channel axes.

    On CPU (float32/float64, contiguous factors) a C kernel writes W in one pass and its
    backward reads the weight gradient once for both factor gradients; elsewhere (GPU,
    ``create_graph=True`` backward, torch.func transforms, ``torch.compile``) torch ops
    take one matrix product and one interleaving copy. Both agree to rounding.

    Args:
        algebra: A, shape (n, n, n): n algebra matrices of n x n.
        filters: F, shape (n, out / n, in / n, *kernel).

    Returns:
        W of shape (out, in, *kernel), W[a * o + p, b * i + q] = sum_s A[s, a, b] F[s, p, q].

    Examples:
        >>> a, f = torch.randn(2, 2, 2), torch.randn(2, 3, 1)
        >>> w = compose_weight(a, f)
        >>> torch.allclose(w, torch.kron(a[0], f[0]) + torch.kron(a[1], f[1]))
        True
    """
    n = algebra.shape[0]
    if algebra.shape != (n, n, n) or filters.dim() < 3 or filters.shape[0] != n:
        raise ValueError(f"algebra must be (n, n, n) and filters (n, out/n, in/n, ...), got "
                         f"{tuple(algebra.shape)} and {tuple(filters.shape)}")
    return _fused.compose(algebra, filters)


def _divisible(name: str, value: int, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value % n:
        raise ValueError(f"{name}={value} is not divisible by n={n}; a PH layer needs both "
                         "feature counts to be multiples of n (choose n dividing both)")
    return value


class _PHLayer(nn.Module):
    """What PHM linear and PH convolutions share: the factors A and F, the composed
    ``weight``, the initialization and the parameter count."""

    def __init__(self, in_features: int, out_features: int, n: int, kernel: tuple[int, ...],
                 bias: bool, init: str, gain: float, device: Any, dtype: Any) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer (the algebra's dimension), "
                             f"got {n!r}")
        _divisible("in_features", in_features, n)
        _divisible("out_features", out_features, n)
        if init not in INITS:
            raise ValueError(f"init={init!r} is not allowed; valid: {', '.join(INITS)}")
        if not (math.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be finite and > 0, got {gain!r}")
        self.n, self.init, self.gain = n, init, float(gain)
        self.in_features, self.out_features = in_features, out_features
        factory = {"device": device, "dtype": dtype}
        self.A = nn.Parameter(torch.empty(n, n, n, **factory))
        self.F = nn.Parameter(torch.empty(n, out_features // n, in_features // n, *kernel,
                                          **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @property
    def fan_in(self) -> int:
        """Inputs per output unit of the composed weight: in_features * prod(kernel)."""
        return self.in_features * math.prod(self.F.shape[3:])

    @property
    def weight(self) -> Tensor:
        """The composed weight sum_s kron(A_s, F_s), (out, in, *kernel)."""
        return compose_weight(self.A, self.F)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw A and F by ``init`` (module docstring) and zero the bias."""
        if self.init == "fan_in":
            self.A.normal_(0.0, 1.0 / math.sqrt(self.n), generator=generator)
            self.F.normal_(0.0, self.gain / math.sqrt(self.fan_in), generator=generator)
        else:
            nn.init.xavier_uniform_(self.A, generator=generator)
            nn.init.xavier_uniform_(self.F, generator=generator)
        if self.bias is not None:
            self.bias.zero_()

    def _repr_head(self) -> str:
        return (f"{self.in_features}, {self.out_features}, n={self.n}, "
                f"bias={self.bias is not None}, init={self.init}, gain={self.gain:g}")


class PHMLinear(_PHLayer):
    """A linear layer whose weight is sum_s kron(A_s, F_s): about 1/n of the parameters.

    ``y = x W^T + b`` like :class:`torch.nn.Linear`, with W composed from the learned
    factors (see the module docstring). With ``init="fan_in"`` the composed weight has
    Var = gain^2 / in_features, so a unit-variance input gives outputs of variance gain^2
    (mean zero over weight draws), as a LeCun/He-initialized Linear does.

    Args:
        in_features: input size, a multiple of ``n``.
        out_features: output size, a multiple of ``n``.
        n: the hypercomplex dimension (4: quaternion-like).
        bias: learn an additive bias (initialized to 0).
        init: ``"fan_in"`` (variance-correct) or ``"xavier_factors"`` (reference code).
        gain: standard-deviation gain of the composed weight for ``"fan_in"``.
        device: where the factors are allocated.
        dtype: their precision.

    Examples:
        >>> layer = PHMLinear(16, 8, n=4)
        >>> layer(torch.randn(3, 16)).shape, sum(p.numel() for p in layer.parameters())
        (torch.Size([3, 8]), 104)
        >>> w = layer.weight  # the composed (8, 16) matrix: 4^3 + 16 * 8 / 4 + 8 parameters
        >>> torch.allclose(layer(torch.eye(16)), w.T + layer.bias)
        True

    References:
        Zhang, Tay, Zhang, Chan, Luu, Hui & Fu, "Beyond fully-connected layers with
        quaternions: parameterization of hypercomplex multiplications with 1/n
        parameters", ICLR 2021 (arXiv 2102.08597).
    """

    def __init__(self, in_features: int, out_features: int, n: int = 4, bias: bool = True,
                 init: str = "fan_in", gain: float = 1.0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(in_features, out_features, n, (), bias, init, gain, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return self._repr_head()


class _PHConvNd(_PHLayer):
    _dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, ...],
                 n: int, stride: Any, padding: Any, dilation: Any, bias: bool, init: str,
                 gain: float, device: Any, dtype: Any) -> None:
        kernel = _tuple("kernel_size", kernel_size, self._dims)
        super().__init__(in_channels, out_channels, n, kernel, bias, init, gain, device, dtype)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel
        self.stride = _tuple("stride", stride, self._dims)
        self.dilation = _tuple("dilation", dilation, self._dims)
        self.padding = padding if isinstance(padding, str) else _tuple(
            "padding", padding, self._dims, minimum=0)

    def extra_repr(self) -> str:
        return (f"{self._repr_head()}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


def _tuple(name: str, value: Any, dims: int, minimum: int = 1) -> tuple[int, ...]:
    values = (value,) * dims if isinstance(value, int) else tuple(value)
    if len(values) != dims or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum
                                  for v in values):
        raise ValueError(f"{name} must be an integer >= {minimum} or {dims} of them, "
                         f"got {value!r}")
    return values


class PHConv1d(_PHConvNd):
    """A 1-D convolution whose kernel is sum_s kron(A_s, F_s) on the channel axes.

    Same call as :class:`torch.nn.Conv1d` (``groups=1``, zero padding) plus ``n``,
    ``init`` and ``gain``; fan_in = in_channels * kernel_size. With ``init="fan_in"`` a
    unit-variance input gives (away from the zero-padded borders) outputs of variance
    gain^2 in expectation over the weights.

    Examples:
        >>> conv = PHConv1d(8, 8, 3, n=4, padding=1)
        >>> conv(torch.randn(2, 8, 10)).shape, tuple(conv.weight.shape)
        (torch.Size([2, 8, 10]), (8, 8, 3))

    References:
        Grassucci, Zhang & Comminiello, "PHNNs: Lightweight neural networks via
        parameterized hypercomplex convolutions", IEEE TNNLS 2022 (arXiv 2110.04176).
    """

    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int],
                 n: int = 4, stride: int | tuple[int] = 1, padding: Any = 0,
                 dilation: int | tuple[int] = 1, bias: bool = True, init: str = "fan_in",
                 gain: float = 1.0, device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, n, stride, padding, dilation,
                         bias, init, gain, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class PHConv2d(_PHConvNd):
    """A 2-D convolution whose kernel is sum_s kron(A_s, F_s) on the channel axes.

    Same call as :class:`torch.nn.Conv2d` (``groups=1``, zero padding) plus ``n``,
    ``init`` and ``gain``; fan_in = in_channels * kh * kw (see :class:`PHConv1d`).

    Examples:
        >>> conv = PHConv2d(4, 8, 3, n=4, stride=2, padding=1)
        >>> conv(torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 8, 4, 4])

    References:
        Grassucci, Zhang & Comminiello, "PHNNs: Lightweight neural networks via
        parameterized hypercomplex convolutions", IEEE TNNLS 2022 (arXiv 2110.04176).
    """

    _dims = 2

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | tuple[int, int], n: int = 4,
                 stride: int | tuple[int, int] = 1, padding: Any = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True, init: str = "fan_in",
                 gain: float = 1.0, device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, n, stride, padding, dilation,
                         bias, init, gain, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
