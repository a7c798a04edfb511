"""Repeated eigenvalues and singular values: Lanczos from a block of k start vectors reports
a value repeated k times or more k times, and its bounds hold in the sense they state.

On main (single-vector Lanczos) a repeated smallest value was reported once, followed by
larger values presented as the next smallest, with residual bounds near 0 (the HF ResNet
of issue 14: [0, 0.119, 0.169] against [0, 0, 0]). References: dense Jacobians and
Hessians from torch.autograd.functional with NumPy's SVD / eigh.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import lanczos


def sym(n, seed, spectrum):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q @ torch.diag(spectrum) @ q.T


def check_bounds(values, residuals, exact, ascending):
    """Every value is within its residual of an exact eigenvalue, and interlacing: the j-th
    smallest (largest) value is >= (<=) the exact j-th smallest (largest)."""
    exact = np.sort(exact) if ascending else np.sort(exact)[::-1]
    for j, (v, r) in enumerate(zip(values, residuals)):
        assert np.abs(exact - v).min() <= r + 1e-9
        assert (v >= exact[j] - 1e-9) if ascending else (v <= exact[j] + 1e-9)


def test_block_lanczos_finds_a_repeated_eigenvalue_as_often_as_the_block_allows():
    spectrum = torch.cat([torch.zeros(33), torch.linspace(0.5, 3.0, 167),
                          torch.full((5,), 4.0)]).double()
    a = sym(205, 0, spectrum)
    r = lanczos(lambda v: v @ a, 1, 205, 60, dtype=torch.float64, block=4)
    assert r.steps == 60 and r.block == 4 and not r.complete
    np.testing.assert_allclose(r.values[0][:4], 0.0, atol=1e-8)
    np.testing.assert_allclose(r.values[0][-4:], 4.0, atol=1e-8)
    check_bounds(r.values[0][:8], r.residuals[0][:8], spectrum.numpy(), True)
    check_bounds(r.values[0][::-1][:8], r.residuals[0][::-1][:8], spectrum.numpy(), False)


def test_residual_bounds_hold_when_the_block_loses_rank():
    # rank 3: the block Krylov space of 4 vectors is invariant after one step
    a = sym(40, 1, torch.cat([torch.tensor([1.0, 2.0, 3.0]), torch.zeros(37)]).double())
    r = lanczos(lambda v: v @ a, 1, 40, 12, dtype=torch.float64, block=4)
    exact = np.sort(np.r_[[1.0, 2.0, 3.0], np.zeros(37)])
    check_bounds(r.values[0], r.residuals[0], exact, True)
    np.testing.assert_allclose(r.values[0][-3:], [1.0, 2.0, 3.0], atol=1e-10)


def rank_deficient_linear(n, zeros, seed=0):
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.cat([torch.zeros(zeros), torch.linspace(0.5, 2.0, n - zeros - 3),
                   torch.full((3,), 2.5)]).double()
    lin = nn.Linear(n, n, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(u @ torch.diag(s) @ v.T)
    return lin, s.numpy()


def test_jacobian_of_a_rank_deficient_linear_map():
    lin, s = rank_deficient_linear(120, 10)
    res = sp.jacobian_spectrum(lin, torch.randn(2, 120, dtype=torch.float64), k=3, steps=60)
    assert res.block == 3 and not res.complete
    for b in range(2):
        # squared singular values (the operator's eigenvalues) of at most 1e-6 of the
        # largest, 6.25; main gave [0, 0.5, 0.51], i.e. 0.25 for the second
        assert max(np.square(res.bottom[b])) < 1e-6
        np.testing.assert_allclose(res.top[b], 2.5, atol=1e-6)
        check_bounds(np.square(res.bottom[b]), res.bottom_residual[b], s**2, True)
        check_bounds(np.square(res.top[b]), res.top_residual[b], s**2, False)


def dense_svals(f, x):
    """Singular values of the Jacobian of example 0 (dense, autograd)."""
    x0 = x[:1]
    jac = torch.autograd.functional.jacobian(f, x0)
    out_n = f(x0).numel()
    return np.linalg.svd(jac.reshape(out_n, -1).numpy(), compute_uv=False)


def test_strided_conv_has_each_singular_value_once_per_position():
    # a 1x1 convolution with stride 2 applies W (4 x 4, rank 2) at 16 positions: J's singular
    # values are W's, each 16 times; 0 has multiplicity 32
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 1, stride=2, bias=False).double()
    with torch.no_grad():
        w = torch.randn(4, 2, dtype=torch.float64) @ torch.randn(2, 4, dtype=torch.float64)
        conv.weight.copy_(w.view(4, 4, 1, 1))
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    sv_w = np.linalg.svd(w.numpy(), compute_uv=False)
    exact = np.sort(np.repeat(sv_w, 16))
    np.testing.assert_allclose(np.sort(dense_svals(conv, x)), exact, atol=1e-10)
    res = sp.jacobian_spectrum(conv, x, k=4)
    np.testing.assert_allclose(res.top[0], sv_w[0], rtol=1e-8)
    np.testing.assert_allclose(res.bottom[0], 0.0, atol=1e-7)


def test_hessian_of_a_linear_least_squares_model_repeats_each_eigenvalue_per_output():
    # loss = mean over N*O of (W x - y)^2: H = 2 / (N O) kron(I_O, X^T X), every eigenvalue
    # of X^T X repeated O = 3 times; one feature scaled up and one down separate the ends
    g = torch.Generator().manual_seed(0)
    scale = torch.ones(40, dtype=torch.float64)
    scale[0], scale[1] = 3.0, 0.1
    x = torch.randn(200, 40, generator=g, dtype=torch.float64) * scale
    y = torch.randn(200, 3, generator=g, dtype=torch.float64)
    model = nn.Linear(40, 3, bias=False).double()
    ev = np.linalg.eigvalsh((x.T @ x).numpy()) * 2 / (200 * 3)
    exact = np.repeat(ev, 3)
    h = sp.hessian_extremes(model, x, y, loss_fn=nn.MSELoss(), k=3, steps=45)
    assert not h.complete and h.block == 3
    np.testing.assert_allclose(h.largest, ev[-1], rtol=1e-8)
    # main: [ev[0], ev[0], 49 ev[0]] with a residual of 3e-13 on the third
    np.testing.assert_allclose(h.smallest, ev[0], rtol=1e-4)
    check_bounds(h.largest, h.largest_residual, exact, False)
    check_bounds(h.smallest, h.smallest_residual, exact, True)


def test_huggingface_resnet_repeated_zero_singular_values():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16],
                                    depths=[1, 1], layer_type="basic")
    torch.manual_seed(0)
    model = transformers.ResNetModel(cfg).eval().double()

    def f(z):
        return model(z).last_hidden_state

    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    sv = np.sort(dense_svals(f, x))  # 64 values, 37 of them 0 (dead ReLUs)
    assert (sv < 1e-12).sum() > 8
    for steps in (None, 48):  # the default (complete: 80 >= 64) and a partial run
        res = sp.jacobian_spectrum(model, x, k=8, steps=steps)
        assert res.complete == (steps is None)
        # main (30 steps by default): [0, 0, 0, 0.17, ...] with a residual of 0 on 0.17
        np.testing.assert_allclose(res.bottom[0], 0.0, atol=1e-6)
        np.testing.assert_allclose(res.top[0], sv[::-1][:8], rtol=1e-6)
        check_bounds(np.square(res.bottom[0]), res.bottom_residual[0], sv**2, True)
        check_bounds(np.square(res.top[0]), res.top_residual[0], sv**2, False)
