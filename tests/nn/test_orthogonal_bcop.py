"""BCOP pieces of OrthoConv2d against independent computations: the composed kernel's
symbol (its DFT evaluated directly at random frequencies) is unitary, the layer equals a
plain circular nn.Conv2d / strided F.conv2d with its kernel, the space-to-depth footprint
against brute-force enumeration, circular padding against modular indexing, and the QR
sign convention. (Orthogonality of the operator and the frequency matrices:
test_orthogonal.py and test_orthogonal_fast.py.)"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.nn import OrthoConv2d
from signalprop.nn.orthogonal import _bcop

F64 = torch.float64


def symbol(k, wh, ww):
    """sum over taps (i, j) of k[i, j] exp(1j (wh i + ww j)) for a (kh, kw, c, c) kernel."""
    kh, kw = k.shape[:2]
    phase = torch.exp(1j * (wh * torch.arange(kh, dtype=F64)[:, None]
                            + ww * torch.arange(kw, dtype=F64)[None, :]))
    return (k.to(torch.complex128) * phase[:, :, None, None]).sum((0, 1))


@pytest.mark.parametrize("c,taps", [(4, (3, 3)), (5, (2, 4)), (1, (3, 2)), (6, (1, 1))])
def test_the_composed_kernel_has_a_unitary_symbol_at_every_frequency(c, taps):
    gen = torch.Generator().manual_seed(c)
    r = c // 2
    rows = torch.randn(2, taps[0] - 1, c, r, dtype=F64, generator=gen) if r and taps[0] > 1 \
        else None
    cols = torch.randn(2, taps[1] - 1, c, r, dtype=F64, generator=gen) if r and taps[1] > 1 \
        else None
    k = _bcop.compose_kernel(torch.randn(2, c, c, dtype=F64, generator=gen), rows, cols, taps)
    assert k.shape == (2, *taps, c, c)
    eye = torch.eye(c, dtype=torch.complex128)
    for wh, ww in torch.rand(20, 2, dtype=F64, generator=gen) * 2 * math.pi:
        for g in range(2):
            s = symbol(k[g], wh, ww)
            assert torch.allclose(s.mH @ s, eye, atol=1e-12)


@pytest.mark.parametrize("c,m,k,dil", [(4, 4, 3, 1), (3, 6, 5, 1), (6, 2, 3, 2), (4, 4, 4, 1)])
def test_a_stride_one_layer_is_a_circular_conv2d_with_its_kernel(c, m, k, dil):
    torch.manual_seed(0)
    layer = OrthoConv2d(c, m, k, dilation=dil, dtype=F64)
    x = torch.randn(2, c, 9, 7, dtype=F64)
    pad = dil * (k - 1) // 2
    if dil * (k - 1) % 2 == 0:  # symmetric: nn.Conv2d's own circular padding
        conv = nn.Conv2d(c, m, k, padding=pad, dilation=dil, padding_mode="circular",
                         dtype=F64)
        with torch.no_grad():
            conv.weight.copy_(layer.conv_weight())
            conv.bias.copy_(layer.bias)
        want = conv(x)
    else:  # 'same' for an even window pads one more on the right, as torch's "same" does
        xp = F.pad(x, (pad, dil * (k - 1) - pad) * 2, mode="circular")
        want = F.conv2d(xp, layer.conv_weight(), layer.bias, dilation=dil)
    assert torch.allclose(layer(x), want, atol=1e-12)


@pytest.mark.parametrize("c,m,k,s", [(2, 8, 3, 2), (3, 6, 5, 2), (2, 9, 3, 3), (4, 8, 2, 2)])
def test_a_strided_layer_is_a_strided_circular_conv_with_its_folded_kernel(c, m, k, s):
    torch.manual_seed(1)
    layer = OrthoConv2d(c, m, k, stride=s, dtype=F64)
    x = torch.randn(2, c, 6 * s, 4 * s, dtype=F64)
    w, dil, offset = layer._equivalent_kernel()
    kh, kw = w.shape[-2:]
    # output i reads input rows s i + offset + (0 .. kh - 1), wrapping around
    xp = _bcop.circular_pad(x, (-offset[1], kw - 1 + offset[1] - (s - 1),
                                -offset[0], kh - 1 + offset[0] - (s - 1)))
    want = F.conv2d(xp, w, layer.bias, stride=s)
    assert want.shape == layer(x).shape
    assert torch.allclose(layer(x), want, atol=1e-12)


@pytest.mark.parametrize("k,s,d", [(3, 2, 1), (1, 2, 1), (2, 2, 1), (5, 2, 1), (3, 3, 1),
                                   (3, 2, 2), (4, 3, 1), (7, 4, 1)])
def test_the_footprint_covers_exactly_the_blocks_the_window_reads(k, s, d):
    pad = d * (k - 1) // 2
    blocks = sorted({math.floor((a * d - pad) / s) for a in range(k)})
    lo, taps = _bcop.footprint(k, s, d)
    assert (lo, taps) == (blocks[0], blocks[-1] - blocks[0] + 1)


@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (0, 2, 1, 0), (5, 3, 7, 2), (0, 0, 0, 0)])
def test_circular_padding_wraps_any_number_of_times(pads):
    x = torch.arange(2 * 3 * 4, dtype=F64).reshape(1, 2, 3, 4)
    left, right, top, bottom = pads
    rows = [(i - top) % 3 for i in range(3 + top + bottom)]
    cols = [(j - left) % 4 for j in range(4 + left + right)]
    want = x[:, :, rows][:, :, :, cols]
    assert torch.equal(_bcop.circular_pad(x, pads), want)


def test_orthonormal_columns_are_the_q_factor_with_a_positive_diagonal():
    z = torch.randn(3, 6, 4, dtype=F64)
    q = _bcop.orthonormal_columns(z)
    r = q.mT @ z  # z = q r: r upper triangular with a positive diagonal
    assert torch.allclose(torch.tril(r, -1), torch.zeros_like(r), atol=1e-12)
    assert bool((torch.diagonal(r, dim1=-2, dim2=-1) > 0).all())
    assert torch.allclose(q @ r, z, atol=1e-12)


def test_one_channel_and_one_tap_layers_have_no_projector_parameters():
    assert OrthoConv2d(1, 1, 3).proj_h is None  # c = 1: the blocks are shifts
    layer = OrthoConv2d(4, 4, (3, 1))
    assert layer.proj_w is None and layer.proj_h.shape == (1, 2, 4, 2)
    assert {n for n, _ in layer.named_parameters()} == {"ortho", "proj_h", "bias"}


def test_float32_layers_are_orthogonal_to_float32_rounding():
    torch.manual_seed(2)
    layer = OrthoConv2d(16, 64, 3, stride=2)  # an isometry, float32
    x = torch.randn(4, 16, 16, 16)
    ratio = layer(x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert torch.allclose(ratio, torch.ones(4), atol=1e-5)


def test_weight_reads_as_a_conv2d_kernel_and_the_state_dict_round_trips():
    torch.manual_seed(3)
    layer = OrthoConv2d(4, 16, 3, stride=2, dtype=F64)
    assert layer.weight.shape == (16, 4, 4, 4)  # the 2 x 2 taps on the 2 x 2 blocks
    assert set(layer.state_dict()) == {"ortho", "proj_h", "proj_w", "bias"}
    twin = OrthoConv2d(4, 16, 3, stride=2, dtype=F64)
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 8, 8, dtype=F64)
    assert torch.equal(twin(x), layer(x))
    cay = OrthoConv2d(4, 16, 3, stride=2, construction="cayley")
    assert isinstance(cay.weight, nn.Parameter) and set(cay.state_dict()) == {"weight", "bias"}


def test_a_depthwise_layer_is_a_signed_identity_not_a_shift():
    # one channel per group: every orthogonal FIR filter is a signed shift; the layer
    # keeps the tap at offset 0 (a 7 x 7 "same" window would otherwise move the image)
    layer = OrthoConv2d(8, 8, 7, groups=8, bias=False, dtype=F64)
    x = torch.randn(2, 8, 9, 9, dtype=F64)
    signs = torch.sign(layer.ortho.detach()).reshape(1, 8, 1, 1)
    assert torch.allclose(layer(x), signs * x)
    for taps in ((3, 3), (4, 2), (1, 5)):
        k = _bcop.compose_kernel(torch.ones(1, 1, 1, dtype=F64), None, None, taps)
        nz = k[0, :, :, 0, 0].nonzero().tolist()
        assert nz == [[(taps[0] - 1) // 2, (taps[1] - 1) // 2]]
