"""orth_penalty, OrthoConv2d and the existence theorem, against explicit operators.

References used: the dense operator (the layer applied to every basis vector), explicit
orthogonal kernels built here (a partial isometry on the stride phases the taps read),
Achour et al.'s Theorem 7 (Frobenius error = N^d L_orth) and Theorem 8 (spectral error
<= sqrt(alpha L_orth), alpha independent of N), torch.autograd.gradcheck.
"""

import math

import pytest
import torch
import torch.nn as nn

from signalprop.measure import conv_spectrum
from signalprop.nn import OrthoConv2d, ScaledStdConv2d, orth_penalty
from signalprop.nn.orthogonal import _cayley
from signalprop.theory import orthogonal_conv_exists

F64 = torch.float64


def circular_conv(c, m, k, s=1, dil=1, groups=1, d=2, weight=None):
    k, s, dil = ((v,) * d if isinstance(v, int) else v for v in (k, s, dil))
    pad = tuple(di * (ki - 1) // 2 for ki, di in zip(k, dil))
    cls = {1: nn.Conv1d, 2: nn.Conv2d}[d]
    conv = cls(c, m, k, stride=s, padding=pad, dilation=dil, groups=groups, bias=False,
               padding_mode="circular").double()
    if weight is not None:
        with torch.no_grad():
            conv.weight.copy_(weight)
    return conv


def dense(conv, shape):
    n = math.prod(shape)
    with torch.no_grad():
        return conv(torch.eye(n, dtype=F64).reshape(n, *shape)).reshape(n, -1).T


def orthogonal_kernel(c, m, k, s, dil, groups, d=2):
    """An explicit orthogonal kernel: on each axis the first min(k, S / gcd(dil, S)) taps
    (they read distinct stride phases) carry a matrix with orthonormal rows or columns."""
    k, s, dil = ((v,) * d if isinstance(v, int) else v for v in (k, s, dil))
    taps = [min(ki, si // math.gcd(di, si)) for ki, si, di in zip(k, s, dil)]
    cg, mg = c // groups, m // groups
    w = torch.zeros(m, cg, *k, dtype=F64)
    for g in range(groups):
        cols = cg * math.prod(taps)
        q = torch.linalg.qr(torch.randn(max(mg, cols), max(mg, cols), dtype=F64))[0]
        u = q[:mg, :cols]  # orthonormal rows (mg <= cols) or columns (mg >= cols)
        w[(slice(g * mg, (g + 1) * mg), slice(None), *(slice(0, t) for t in taps))] = \
            u.reshape(mg, cg, *taps)
    return w


GRID = [(c, m, k, s, dil, g, d) for d in (1, 2) for (c, m, k, s, dil, g) in [
    (2, 2, 3, 1, 1, 1), (2, 4, 3, 2, 1, 1), (2, 8, 3, 2, 1, 1), (2, 3, 1, 2, 1, 1),
    (2, 5, 2, 3, 1, 1), (2, 2, 1, 3, 1, 1), (3, 12, 2, 2, 1, 1), (2, 4, 3, 2, 2, 1),
    (4, 8, 3, 2, 3, 2), (4, 4, 1, 2, 1, 2), (1, 4, 4, 3, 1, 1), (2, 16, 1, 2, 1, 1)]]


@pytest.mark.parametrize("c,m,k,s,dil,g,d", GRID)
def test_existence_theorem_against_explicit_operators(c, m, k, s, dil, g, d):
    e = orthogonal_conv_exists(c, m, k, s, dilation=dil, groups=g, ndim=d)
    n = s * max(2, -(-(dil * (k - 1) + 1) // s))  # S N >= receptive field
    shape = (c, *(n,) * d)
    if e.exists:  # sufficiency: an explicit orthogonal kernel
        w = orthogonal_kernel(c, m, k, s, dil, g, d)
        res = conv_spectrum(circular_conv(c, m, k, s, dil, g, d, w), shape)
        assert torch.allclose(res.singular_values, torch.ones_like(res.singular_values),
                              atol=1e-12), e.reason
        assert float(orth_penalty(w, stride=s, dilation=dil, groups=g)) < 1e-20
        return
    # necessity: for random kernels the operator's rank (RO) or its columns (CO) rule
    # orthogonality out
    a = dense(circular_conv(c, m, k, s, dil, g, d, torch.randn(m, c // g, *(k,) * d,
                                                                dtype=F64)), shape)
    if m > c * min(k, s // math.gcd(dil, s)) ** d:  # more rows than read input phases
        assert torch.linalg.matrix_rank(a) < a.shape[0]  # rows cannot be orthonormal
    else:
        assert bool((a.abs().sum(dim=0) == 0).any())  # an input pixel nobody reads


@pytest.mark.parametrize("c,m,k,s,d,groups,dil", [
    (4, 4, 3, 1, 2, 1, 1), (3, 5, 3, 2, 2, 1, 1), (3, 16, 3, 2, 2, 1, 1),
    (3, 12, 3, 2, 2, 1, 1), (2, 6, 5, 3, 2, 1, 1), (4, 6, 3, 1, 2, 2, 1),
    (3, 7, 3, 2, 1, 1, 1), (2, 9, 5, 1, 1, 1, 2), (4, 2, 3, 2, 1, 1, 1)])
def test_frobenius_error_is_n_to_the_d_times_lorth(c, m, k, s, d, groups, dil):
    # Theorem 7: for S N >= 2k - 1 (here with the dilated kernel), err_F^2 = N^d L_orth
    w = 0.4 * torch.randn(m, c // groups, *(k,) * d, dtype=F64)
    span = dil * (k - 1) + 1
    lorth = float(orth_penalty(w, stride=s, dilation=dil, groups=groups))
    for n in (-(-(2 * span - 1) // s), -(-(2 * span - 1) // s) + 2):
        shape = (c, *(s * n,) * d)
        a = dense(circular_conv(c, m, k, s, dil, groups, d, w), shape)
        gram = a @ a.T if m <= c * s ** d else a.T @ a
        err_f2 = float((gram - torch.eye(gram.shape[0], dtype=F64)).square().sum())
        assert err_f2 == pytest.approx(n ** d * lorth, rel=1e-10)


def test_spectral_error_bounded_independently_of_n():
    # Theorem 8 on 40 random near-orthogonal kernels and N = 4..32: alpha' L <= err_s^2 <=
    # alpha L, with alpha = (2 floor((k-1)/S) + 1)^d M (RO) or (2k - 1)^d C (CO)
    torch.manual_seed(1)
    for trial in range(40):
        c, m, k, s = [(4, 4, 3, 1), (4, 8, 3, 2), (2, 16, 3, 2), (3, 12, 3, 2)][trial % 4]
        eps = 10.0 ** (-1 - trial % 3)
        w = orthogonal_kernel(c, m, k, s, 1, 1) + eps * torch.randn(m, c, k, k, dtype=F64)
        lorth = float(orth_penalty(w, stride=s))
        ro = m <= c * s * s
        alpha = (2 * ((k - 1) // s) + 1) ** 2 * m if ro else (2 * k - 1) ** 2 * c
        alpha_low = 1 / min(m, c * s * s)
        for n in (4, 8, 32):
            res = conv_spectrum(circular_conv(c, m, k, s, weight=w), (c, s * n, s * n),
                                values=False)
            err_s2 = max(abs(res.sigma_max ** 2 - 1), abs(res.sigma_min ** 2 - 1)) ** 2
            assert alpha_low * lorth * (1 - 1e-9) <= err_s2 <= alpha * lorth * (1 + 1e-9)


def test_penalty_is_differentiable_and_uses_the_applied_kernel():
    w = torch.randn(3, 2, 3, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: orth_penalty(v, stride=2), (w,))
    ws = ScaledStdConv2d(2, 3, 3, dtype=F64)
    assert orth_penalty(ws).item() == pytest.approx(
        orth_penalty(ws.standardized_weight()).item(), rel=1e-12)
    orth_penalty(ws).backward()
    assert ws.weight.grad is not None and ws.gain.grad is not None
    conv1d = nn.Conv1d(2, 4, 3, stride=2, groups=2)
    assert orth_penalty(conv1d).item() == pytest.approx(
        orth_penalty(conv1d.weight, stride=2, groups=2).item(), rel=1e-6)


def test_penalty_bad_input():
    with pytest.raises(ValueError, match="takes a convolution layer"):
        orth_penalty(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="come from the layer"):
        orth_penalty(nn.Conv2d(2, 2, 3), stride=2)
    with pytest.raises(ValueError, match="floating .* tensor"):
        orth_penalty(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="groups=3 must divide"):
        orth_penalty(torch.zeros(4, 2, 3, 3), groups=3)


# ---------------------------------------------------------------- OrthoConv2d

@pytest.mark.parametrize("args,shape", [
    ((4, 4, 3), (4, 6, 6)), ((4, 16, 3, 2), (4, 8, 8)), ((4, 8, 3, 2), (4, 8, 6)),
    ((8, 4, 3), (8, 5, 5)), ((4, 6, 3, (2, 1), "same", (1, 2), 2), (4, 8, 6)),
    ((2, 4, (3, 1), 1), (2, 5, 3)), ((6, 6, 5, 1, "same", 1, 3), (6, 7, 8)),
    ((3, 3, 5), (3, 2, 2)), ((4, 4, 4), (4, 6, 6)), ((4, 4, 3, 1, "same", 2), (4, 6, 6)),
    ((4, 16, 2, 2), (4, 6, 6)), ((3, 3, 3, 2, "same", 2), (3, 8, 8))])
@pytest.mark.parametrize("construction", ["bcop", "cayley"])
def test_orthoconv_operator_is_orthogonal(args, shape, construction):
    layer = OrthoConv2d(*args, dtype=F64, construction=construction)
    a = dense_module(layer, shape)
    sv = torch.linalg.svdvals(a)
    assert torch.allclose(sv[: min(a.shape)], torch.ones(min(a.shape), dtype=F64), atol=1e-12)


def dense_module(layer, shape):
    n = math.prod(shape)
    with torch.no_grad():
        out = layer(torch.eye(n, dtype=F64).reshape(n, *shape)) - layer(
            torch.zeros(1, *shape, dtype=F64))
    return out.reshape(n, -1).T


@pytest.mark.parametrize("construction", ["bcop", "cayley"])
def test_orthoconv_keeps_norms_and_trains(construction):
    iso = OrthoConv2d(3, 12, 3, stride=2, bias=False, construction=construction)  # M = C S^2
    x = torch.randn(5, 3, 8, 8)
    assert torch.allclose(iso(x).flatten(1).norm(dim=1), x.flatten(1).norm(dim=1), rtol=1e-5)
    layer = OrthoConv2d(3, 6, 3, construction=construction)
    layer(x)[:, 0].sum().backward()  # not a norm: an orthogonal map keeps those
    for name, p in layer.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    assert f"construction={construction!r}" in repr(layer)


def test_cayley_orthoconv_starts_from_identity_at_zero():
    x = torch.randn(5, 3, 8, 8)
    eye = OrthoConv2d(3, 3, 3, bias=False, construction="cayley")
    with torch.no_grad():
        eye.weight.zero_()
    assert torch.allclose(eye(x), x, atol=1e-6)
    eye.reset_parameters()
    assert bool(eye.weight.abs().sum() > 0) and "case='square'" in repr(eye)


def test_orthoconv_refuses_what_cannot_be_orthogonal():
    with pytest.raises(ValueError, match="no orthogonal convolution exists .* RO case"):
        OrthoConv2d(64, 128, 1, stride=2)  # the strided ResNet shortcut
    with pytest.raises(ValueError, match="padding_mode='circular'.*Proposition 6"):
        OrthoConv2d(4, 4, 3, padding_mode="zeros")
    with pytest.raises(ValueError, match="padding must be 'same'"):
        OrthoConv2d(4, 4, 3, padding=0)
    with pytest.raises(ValueError, match="construction='fft' is not allowed; valid: bcop, cayley"):
        OrthoConv2d(4, 4, 3, construction="fft")
    with pytest.raises(ValueError, match="conv_weight.. is the kernel of construction='bcop'"):
        OrthoConv2d(4, 4, 3, construction="cayley").conv_weight()
    layer = OrthoConv2d(2, 8, 3, stride=2)
    with pytest.raises(ValueError, match="multiples of it, got 7 x 8"):
        layer(torch.randn(1, 2, 7, 8))
    with pytest.raises(ValueError, match=r"expects \(B, 2, H, W\)"):
        layer(torch.randn(1, 3, 8, 8))


def test_cayley_gives_orthonormal_columns_or_rows():
    for m, n in ((5, 3), (3, 5), (4, 4)):
        q = _cayley.cayley(torch.randn(7, m, n, dtype=torch.complex128))
        gram = q.mH @ q if m >= n else q @ q.mH
        assert torch.allclose(gram, torch.eye(min(m, n), dtype=gram.dtype).expand_as(gram),
                              atol=1e-12)
