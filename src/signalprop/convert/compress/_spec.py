"""A chain of convolutions with identity activations between them, as one convolution.

A :class:`ConvSpec` is the affine map from a segment's input to one of its values,
written as a single convolution: a dense float64 weight (groups expanded), a bias,
stride, dilation, the padding applied once to the input (before, after per spatial dim)
and its mode. Composing with the next convolution (k2, s2, d2, p2):

* strides multiply, S = s_1 s_2; the taps of the composite sit at s_1 d_2 m + d_1 n, so
  the dilation is D = gcd(s_1 d_2, d_1) and the kernel K = ((k_2-1) s_1 d_2 +
  (k_1-1) d_1) / D + 1 (K = k_1 + k_2 - 1 for stride and dilation 1);
* the weight is sum_m W_2[:, :, m] W_1 placed at offset s_1 d_2 m; the bias is
  b_2 + (sum_m W_2[:, :, m]) b_1;
* the second padding moves to the input: P = p_1 + s_1 p_2 on each side.

Moving padding is exact only where padding the intermediate equals computing it from a
padded input, which this module checks (and refuses otherwise, naming the layers):

* ``zeros``: the map before has kernel 1, no padding and zero bias (it sends zero
  padding to zero padding, at any stride);
* ``circular``: the map before is a circular convolution (stride 1, output as long as
  the input, circular or no padding): it commutes with periodic extension;
* ``reflect`` / ``replicate``: the map before is pointwise (kernel 1, stride 1).

With ``padding="move"`` a zero padding is moved anyway (the layer is listed in
``moved``): the merged convolution then equals the network whose inner zero padding was
moved to the segment's first convolution, which equals the original wherever an
output's receptive field does not reach an inner padding (the interior), as in Kim et
al. (2023), who fine-tune with the padding moved and merge afterwards. BatchNorm (eval)
is a per-channel affine map; an identity shortcut or another convolution branch adds
two maps of one input (their kernels aligned on the input grid).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.convert.report import ConversionError

_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_PADS = {
    "zeros": {1: nn.ZeroPad1d, 2: nn.ZeroPad2d, 3: nn.ZeroPad3d},
    "circular": {1: nn.CircularPad1d, 2: nn.CircularPad2d, 3: nn.CircularPad3d},
    "reflect": {1: nn.ReflectionPad1d, 2: nn.ReflectionPad2d, 3: nn.ReflectionPad3d},
    "replicate": {1: nn.ReplicationPad1d, 2: nn.ReplicationPad2d, 3: nn.ReplicationPad3d},
}
POLICIES = ("exact", "move")


class MergeError(ConversionError):
    """A segment cannot be merged into one convolution; the message names the layers.

    Examples:
        >>> import torch.nn as nn, signalprop as sp
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3))
        >>> try:
        ...     sp.convert.merge_convs(net, [[0, 2]])
        ... except MergeError as err:
        ...     print(err)
        merge_convs: segment ['0', '2']: '1' (MaxPool2d) lies between its convolutions; only
        BatchNorm, activations, dropout/identity and residual additions can
    """


@dataclass(frozen=True)
class ConvSpec:
    """One convolution equal to an affine map of a segment's input (module docstring).

    Attributes:
        weight: (C_out, C_in, *K) float64, groups expanded to a dense weight.
        bias: (C_out,) float64.
        stride, dilation: per spatial dim.
        pad: (before, after) padding of the input per spatial dim.
        mode: the padding mode ("zeros", "circular", "reflect", "replicate").
        moved: layers whose zero padding was moved to the input (interior-exact only).
    """

    weight: Tensor
    bias: Tensor
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad: tuple[tuple[int, int], ...]
    mode: str = "zeros"
    moved: tuple[str, ...] = ()

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    @property
    def padded(self) -> bool:
        return any(p != (0, 0) for p in self.pad)

    def extent(self, d: int) -> int:
        """Input span of one output position along dim ``d``, minus one: D (K - 1)."""
        return self.dilation[d] * (self.kernel[d] - 1)

    def pointwise(self) -> bool:
        return all(k == 1 for k in self.kernel) and not self.padded \
            and all(s == 1 for s in self.stride)

    def zero_border(self) -> bool:
        """Maps zero padding of its input to zero padding of its output."""
        return all(k == 1 for k in self.kernel) and not self.padded \
            and not bool(self.bias.any())

    def periodic(self) -> bool:
        """A circular convolution: commutes with periodic extension of its input."""
        return all(s == 1 for s in self.stride) and all(
            p[0] + p[1] == self.extent(d) for d, p in enumerate(self.pad)) and (
            self.mode == "circular" or not self.padded)


def identity_spec(channels: int, nd: int) -> ConvSpec:
    """The identity map of a ``channels``-channel input as a kernel-1 convolution."""
    w = torch.eye(channels, dtype=torch.float64).reshape(channels, channels, *([1] * nd))
    return ConvSpec(w, torch.zeros(channels, dtype=torch.float64), (1,) * nd, (1,) * nd,
                    ((0, 0),) * nd)


def dense_weight(conv: nn.Module) -> Tensor:
    """(C_out, C_in, *K) float64 weight of a (grouped) convolution, zeros between groups."""
    w = conv.weight.detach().to(torch.float64)
    g, c_out, c_in = conv.groups, conv.out_channels, conv.in_channels
    if g == 1:
        return w.clone()
    out = w.new_zeros(c_out, c_in, *w.shape[2:])
    o, i = c_out // g, c_in // g
    for k in range(g):
        out[k * o:(k + 1) * o, k * i:(k + 1) * i] = w[k * o:(k + 1) * o]
    return out


def _padding(conv: nn.Module, name: str) -> tuple[tuple[int, int], ...]:
    nd = len(conv.kernel_size)
    if conv.padding == "valid":
        return ((0, 0),) * nd
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        return tuple((t // 2, t - t // 2) for t in total)
    return tuple((int(p), int(p)) for p in conv.padding)


def conv_spec(conv: nn.Module, name: str) -> ConvSpec:
    """The :class:`ConvSpec` of a plain ``nn.Conv1d/2d/3d``."""
    w = dense_weight(conv)
    b = conv.bias.detach().to(torch.float64) if conv.bias is not None else w.new_zeros(
        w.shape[0])
    return ConvSpec(w, b.clone(), tuple(conv.stride), tuple(conv.dilation),
                    _padding(conv, name), conv.padding_mode)


# ---- composition ------------------------------------------------------------------------
def _moves_exactly(prefix: ConvSpec, mode: str) -> bool:
    if mode == "zeros":
        return prefix.zero_border()
    if mode == "circular":
        return prefix.periodic()
    return prefix.pointwise()


def _combined_mode(prefix: ConvSpec, conv: ConvSpec, name: str, seg: str) -> str:
    if not conv.padded:
        return prefix.mode
    if not prefix.padded:
        return conv.mode
    if prefix.mode != conv.mode:
        raise MergeError(f"{seg}: padding modes do not compose: '{name}' pads with "
                         f"{conv.mode!r} after a {prefix.mode!r}-padded input")
    return conv.mode


def _check_move(prefix: ConvSpec, conv: ConvSpec, name: str, seg: str, policy: str
                ) -> tuple[str, ...]:
    """The layers moved inexactly after moving ``conv``'s padding (or a MergeError)."""
    if not conv.padded or _moves_exactly(prefix, conv.mode):
        return prefix.moved
    if conv.mode == "zeros" and policy == "move":
        return (*prefix.moved, name)
    why = {"zeros": "the layers before it have a kernel > 1, padding or a bias, so zeros "
                    "padded between them differ from zeros padded at the input",
           "circular": "the layers before it are not a stride-1 circular convolution"}
    hint = " (padding='move' merges it exactly in the interior)" if conv.mode == "zeros" else ""
    reason = why.get(conv.mode, "the layers before it are not pointwise")
    raise MergeError(f"{seg}: cannot move the {conv.mode} padding of '{name}' to the "
                     f"segment's input: {reason}{hint}")


def _steps(prefix: ConvSpec, conv: ConvSpec) -> tuple[list[int], list[int], list[int]]:
    """Per dim: tap step of the second kernel (a), of the first (b), common dilation D."""
    a_s, b_s, d_s = [], [], []
    for d in range(len(conv.kernel)):
        a, b = prefix.stride[d] * conv.dilation[d], prefix.dilation[d]
        k2, k1 = conv.kernel[d], prefix.kernel[d]
        dil = 1 if k1 == k2 == 1 else b if k2 == 1 else a if k1 == 1 else math.gcd(a, b)
        a_s.append(a)
        b_s.append(b)
        d_s.append(dil)
    return a_s, b_s, d_s


def then_conv(prefix: ConvSpec, conv: ConvSpec, name: str, seg: str, policy: str
              ) -> ConvSpec:
    """``conv`` applied after ``prefix``, as one :class:`ConvSpec` (module docstring)."""
    mode = _combined_mode(prefix, conv, name, seg)
    moved = _check_move(prefix, conv, name, seg, policy)
    a_s, b_s, d_s = _steps(prefix, conv)
    k_new = [((k2 - 1) * a + (k1 - 1) * b) // dil + 1 for k2, k1, a, b, dil in
             zip(conv.kernel, prefix.kernel, a_s, b_s, d_s)]
    w1, w2 = prefix.weight, conv.weight
    out = w1.new_zeros(w2.shape[0], w1.shape[1], *k_new)
    for m in itertools.product(*(range(k) for k in conv.kernel)):
        part = torch.tensordot(w2[(slice(None), slice(None), *m)], w1, dims=([1], [0]))
        idx = tuple(slice(mi * a // dil, mi * a // dil + (k1 - 1) * (b // dil) + 1,
                          max(b // dil, 1))
                    for mi, a, b, dil, k1 in zip(m, a_s, b_s, d_s, prefix.kernel))
        out[(slice(None), slice(None), *idx)] += part
    spatial = tuple(range(2, w2.dim()))
    bias = conv.bias + w2.sum(dim=spatial) @ prefix.bias
    pad = tuple((p[0] + s * q[0], p[1] + s * q[1])
                for p, q, s in zip(prefix.pad, conv.pad, prefix.stride))
    stride = tuple(s1 * s2 for s1, s2 in zip(prefix.stride, conv.stride))
    return ConvSpec(out, bias, stride, tuple(d_s), pad, mode, moved)


def then_affine(spec: ConvSpec, scale: Tensor, shift: Tensor) -> ConvSpec:
    """``scale * spec + shift`` per output channel (an eval-mode BatchNorm)."""
    shape = (-1,) + (1,) * (spec.weight.dim() - 1)
    return replace(spec, weight=spec.weight * scale.reshape(shape),
                   bias=spec.bias * scale + shift)


def _aligned(a: ConvSpec, b: ConvSpec, seg: str, what: str
             ) -> tuple[list[int], list[int], list[int], list[tuple[int, int]]]:
    """Common dilation, left padding and kernel of two maps of one input, per dim, and
    the (before, after) padding of their sum; MergeError where they do not align."""
    dils, lefts, kernels, pads = [], [], [], []
    for d in range(len(a.kernel)):
        ds = [s.dilation[d] for s in (a, b) if s.kernel[d] > 1]
        dil = math.gcd(*ds) if ds else 1
        left = max(a.pad[d][0], b.pad[d][0])
        if any((left - s.pad[d][0]) % dil for s in (a, b)):
            raise MergeError(f"{seg}: {what}: the two kernels fall on different input grids")
        reach = max(left - s.pad[d][0] + s.extent(d) for s in (a, b))
        rights = {s.pad[d][0] + s.pad[d][1] - s.extent(d) - left + reach for s in (a, b)}
        if len(rights) != 1 or min(rights) < 0:
            raise MergeError(f"{seg}: {what}: the two operands do not have one output size "
                             "for every input size")
        dils.append(dil)
        lefts.append(left)
        kernels.append(reach // dil + 1)
        pads.append((left, rights.pop()))
    return dils, lefts, kernels, pads


def plus(a: ConvSpec, b: ConvSpec, seg: str, what: str) -> ConvSpec:
    """``a + b`` for two maps of the same input (a residual addition), as one ConvSpec."""
    if a.stride != b.stride or a.weight.shape[:2] != b.weight.shape[:2]:
        raise MergeError(f"{seg}: {what}: the operands differ in stride ({a.stride} vs "
                         f"{b.stride}) or channels")
    if a.padded and b.padded and a.mode != b.mode:
        raise MergeError(f"{seg}: {what}: padding modes {a.mode!r} and {b.mode!r} do not "
                         "compose")
    dils, lefts, kernels, pads = _aligned(a, b, seg, what)
    out = a.weight.new_zeros(*a.weight.shape[:2], *kernels)
    for s in (a, b):
        idx = []
        for d, (dil, left) in enumerate(zip(dils, lefts)):
            start, step = (left - s.pad[d][0]) // dil, s.dilation[d] // dil or 1
            idx.append(slice(start, start + (s.kernel[d] - 1) * step + 1, step))
        out[(slice(None), slice(None), *idx)] += s.weight
    mode = a.mode if a.padded else b.mode
    moved = tuple(dict.fromkeys(a.moved + b.moved))
    return ConvSpec(out, a.bias + b.bias, a.stride, tuple(dils), tuple(pads), mode, moved)
