"""jacobian_spectrum(): against torch.autograd.functional.jacobian + SVD per example."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import NonFiniteError


def dense_svals(model, x):
    """Singular values of each example's Jacobian, from the full Jacobian (small models)."""
    out = []
    for xb in x:
        j = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0)).reshape(-1), xb)
        out.append(torch.linalg.svdvals(j.reshape(-1, xb.numel())).numpy())
    return out


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: nn.Sequential(nn.Linear(9, 7), nn.Tanh(), nn.Linear(7, 4)), (9,)),  # out < in
        (lambda: nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 8)), (5,)),  # out > in
        (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(),
                               nn.Linear(48, 20)), (2, 4, 4)),
    ],
    ids=["wide-in", "wide-out", "cnn"],
)
def test_exact_when_the_krylov_space_is_complete(make, shape):
    torch.manual_seed(0)
    model = make().double()
    x = torch.randn(3, *shape, dtype=torch.float64)
    ref = dense_svals(model, x)
    d = min(int(np.prod(shape)), ref[0].size)
    s = sp.jacobian_spectrum(model, x, k=3, steps=d, probes=d)
    assert s.steps == d and s.exact_trace and s.trace_probes == d
    assert (s.in_dim, s.out_dim) == (int(np.prod(shape)), model(x).shape[1])
    for b, sv in enumerate(ref):
        np.testing.assert_allclose(s.top[b], sv[:3], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(s.bottom[b], sv[::-1][:3], rtol=1e-7, atol=1e-9)
        assert s.mean_sq_sv[b] == pytest.approx(float(np.mean(sv**2)), rel=1e-10)
        assert s.mean_sq_sv_se[b] == 0.0
        assert s.condition_number[b] == pytest.approx(sv[0] / sv[-1], rel=1e-6)


def test_orthogonal_network_is_isometric():
    torch.manual_seed(0)
    lin = nn.Linear(16, 16, bias=False).double()
    nn.init.orthogonal_(lin.weight)
    s = sp.jacobian_spectrum(lin, torch.randn(4, 16, dtype=torch.float64), k=2)
    np.testing.assert_allclose(np.array(s.top + s.bottom), 1.0, atol=1e-10)
    np.testing.assert_allclose(s.mean_sq_sv, 1.0, atol=1e-12)


def test_partial_lanczos_and_hutchinson_trace():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(60, 80), nn.Tanh(), nn.Linear(80, 70)).double()
    x = torch.randn(2, 60, dtype=torch.float64)
    ref = dense_svals(model, x)
    probes = 40  # < min(in, out) = 60: a Hutchinson estimate
    s = sp.jacobian_spectrum(model, x, k=2, steps=30, probes=probes, seed=3)
    assert s.steps == 30 and s.block == 2 and not s.complete
    assert not s.exact_trace and s.trace_probes == probes
    for b, sv in enumerate(ref):
        exact_sq = sv**2
        # every Ritz value lies within its residual bound of an exact squared singular value
        for val, res in zip(s.top[b] + s.bottom[b], s.top_residual[b] + s.bottom_residual[b]):
            assert np.abs(exact_sq - val**2).min() <= res + 1e-10
        assert s.top[b][0] == pytest.approx(sv[0], rel=1e-6)
        # Hutchinson: the estimate is within 5 standard errors of tr(J J^T) / 60 (a larger
        # deviation has probability < 1e-5 for a near-Gaussian mean of 40 samples)
        assert abs(s.mean_sq_sv[b] - exact_sq.mean()) <= 5 * s.mean_sq_sv_se[b]
        assert 0 < s.mean_sq_sv_se[b] < 0.2 * exact_sq.mean()


class CustomTanh(torch.autograd.Function):
    """tanh as a classic custom autograd Function (no forward-mode formula, no torch.func
    support): J v still comes from differentiating its backward."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class CustomNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 7)

    def forward(self, x):
        return self.b(CustomTanh.apply(self.a(x)))


def test_custom_autograd_functions():
    torch.manual_seed(0)
    model = CustomNet().double()
    x = torch.randn(2, 6, dtype=torch.float64)
    ref = dense_svals(model, x)
    s = sp.jacobian_spectrum(model, x, k=6, steps=6, probes=6)
    for b, sv in enumerate(ref):
        np.testing.assert_allclose(s.top[b], sv, rtol=1e-9, atol=1e-7)  # rank 5: sv[5] = 0
        assert s.mean_sq_sv[b] == pytest.approx(float(np.mean(sv**2)), rel=1e-10)


def test_refusals_and_bad_input():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    with pytest.raises(ValueError, match=r"module '1' \(Dropout\) draws random numbers"):
        sp.jacobian_spectrum(model, torch.randn(2, 4))
    bn = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="BatchNorm module"):
        sp.jacobian_spectrum(bn, torch.randn(3, 4))
    assert len(sp.jacobian_spectrum(bn, torch.randn(3, 4), batchnorm="eval").top) == 3
    with pytest.raises(ValueError, match="floating-point tensor"):
        sp.jacobian_spectrum(nn.Embedding(3, 2), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="x is an empty batch"):
        sp.jacobian_spectrum(nn.Linear(4, 2), torch.randn(0, 4))
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        sp.jacobian_spectrum(nn.Linear(4, 2), torch.randn(2, 4), k=0)
    with pytest.raises(ValueError, match=r"the model output \(2,\) must be a floating tensor whose "
                       r"first axis is the batch \(3\)"):
        sp.jacobian_spectrum(Lambda(lambda x: x.sum(0)), torch.randn(3, 2))
    with pytest.raises(ValueError, match="the model output does not depend on x"):
        sp.jacobian_spectrum(Lambda(lambda x: torch.ones(x.shape[0], 2)), torch.randn(3, 2))


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_nonfinite_output_is_located():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].bias.fill_(math.inf)
    with pytest.raises(NonFiniteError, match=r"first in module '0' \(Linear\)"):
        sp.jacobian_spectrum(model, torch.randn(2, 3))
