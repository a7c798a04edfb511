"""PH layers against independent computations: explicit Kronecker sums (torch.kron loop),
the dense layer with the composed weight, autograd through the loop, Monte Carlo weight
variances with tolerances from their standard errors, and the parameter count."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop import theory
from signalprop.nn import (
    PHConv1d,
    PHConv2d,
    PHMLinear,
    compose_weight,
    nearest_ph_factors,
    to_ph_layer,
)


def kron_loop(a, f):
    """sum_s kron(A_s, F_s) on the channel axes, tap by tap, with torch.kron."""
    n = a.shape[0]
    out, inp = n * f.shape[1], n * f.shape[2]
    taps = f.shape[3:]
    w = torch.zeros(out, inp, *taps, dtype=f.dtype)
    flat_f = f.reshape(n, f.shape[1], f.shape[2], -1)
    flat_w = w.reshape(out, inp, -1)
    for t in range(flat_f.shape[-1]):
        for s in range(n):
            flat_w[:, :, t] += torch.kron(a[s], flat_f[s, :, :, t])
    return w


@pytest.mark.parametrize("shape", [(3, 2, 5), (4, 3, 2, 3), (2, 4, 2, 3, 2)])
def test_compose_is_the_kronecker_sum(shape):
    n = shape[0]
    a = torch.randn(n, n, n, dtype=torch.float64)
    f = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(compose_weight(a, f), kron_loop(a, f), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(3, 2, 5), (2, 4, 2, 3, 2)])
def test_compose_gradients_match_autograd_through_the_loop(shape):
    n = shape[0]
    a = torch.randn(n, n, n, dtype=torch.float64, requires_grad=True)
    f = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(n * shape[1], n * shape[2], *shape[3:], dtype=torch.float64)
    da, df = torch.autograd.grad(compose_weight(a, f), (a, f), g)
    ea, ef = torch.autograd.grad(kron_loop(a, f), (a, f), g)
    torch.testing.assert_close(da, ea)
    torch.testing.assert_close(df, ef)
    assert torch.autograd.gradgradcheck(compose_weight, (a, f))


def test_layers_compute_the_dense_op_with_the_composed_weight():
    x = torch.randn(5, 12, dtype=torch.float64)
    lin = PHMLinear(12, 8, n=4, dtype=torch.float64)
    with torch.no_grad():
        lin.bias.normal_()
    w = kron_loop(lin.A.detach(), lin.F.detach())
    torch.testing.assert_close(lin(x), x @ w.T + lin.bias)
    conv = PHConv1d(6, 9, 3, n=3, stride=2, padding=1, dtype=torch.float64)
    x1 = torch.randn(2, 6, 11, dtype=torch.float64)
    w1 = kron_loop(conv.A.detach(), conv.F.detach())
    torch.testing.assert_close(conv(x1), F.conv1d(x1, w1, conv.bias, 2, 1))
    conv2 = PHConv2d(4, 8, (3, 2), n=2, padding=(1, 0), dilation=(2, 1), bias=False,
                     dtype=torch.float64)
    x2 = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    w2 = kron_loop(conv2.A.detach(), conv2.F.detach())
    torch.testing.assert_close(conv2(x2), F.conv2d(x2, w2, None, 1, (1, 0), (2, 1)))


def test_parameter_count_is_about_one_nth():
    lin = PHMLinear(512, 512, n=4)
    assert sum(p.numel() for p in lin.parameters()) == 4**3 + 512 * 512 // 4 + 512
    conv = PHConv2d(64, 128, 3, n=8, bias=False)
    assert sum(p.numel() for p in conv.parameters()) == 8**3 + 64 * 128 * 9 // 8


def _draws(make, draws):
    """Per draw, the mean squared entry of the composed weight (draws are independent)."""
    out = []
    for seed in range(draws):
        gen = torch.Generator().manual_seed(seed)
        layer = make()
        layer.reset_parameters(generator=gen)
        out.append(layer.weight.detach().double().square().mean().item())
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("init,gain", [("fan_in", 1.0), ("fan_in", math.sqrt(2.0)),
                                       ("xavier_factors", 1.0)])
@pytest.mark.parametrize("make,sizes", [
    (lambda init, gain: PHMLinear(16, 32, n=4, init=init, gain=gain), (16, 32, 1)),
    (lambda init, gain: PHConv1d(8, 16, 3, n=4, init=init, gain=gain), (8, 16, 3)),
])
def test_monte_carlo_weight_variance_matches_the_theory(make, sizes, init, gain):
    """E[W^2] * fan_in over 400 independent draws equals sigma_w^2 within 4 standard errors
    (the mean over entries of one draw is one sample; draws are independent)."""
    fan_in = sizes[0] * sizes[2]
    v = _draws(lambda: make(init, gain), 400) * fan_in
    se = v.std().item() / math.sqrt(len(v))
    want = theory.ph_weight_variance(4, sizes[0], sizes[1], sizes[2], init=init, gain=gain)
    assert abs(v.mean().item() - want) < 4 * se, (v.mean().item(), want, se)


def test_xavier_factors_shrink_the_forward_second_moment_per_layer():
    """A stack of 6 PHM layers (64 wide, no activation) with the reference init multiplies
    E[x^2] by sigma_w^2 = 2n / (d + n^2) = 0.1 per layer; fan_in init keeps it."""
    x = torch.randn(4096, 64, dtype=torch.float64)
    for init, per_layer in (("xavier_factors", 0.1), ("fan_in", 1.0)):
        ratios = []
        for seed in range(8):
            torch.manual_seed(seed)
            stack = nn.Sequential(*[PHMLinear(64, 64, 4, bias=False, init=init,
                                              dtype=torch.float64) for _ in range(6)])
            with torch.no_grad():
                ratios.append((stack(x).square().mean() / x.square().mean()).item())
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) ** (1 / 6)
        assert abs(geo / per_layer - 1) < 0.15, (init, geo)


def test_bad_sizes_and_options_name_the_argument():
    with pytest.raises(ValueError, match="in_features=10 is not divisible by n=4"):
        PHMLinear(10, 8, n=4)
    with pytest.raises(ValueError, match="out_features=6 is not divisible by n=4"):
        PHConv1d(8, 6, 3, n=4)
    with pytest.raises(ValueError, match="init='he' is not allowed"):
        PHMLinear(8, 8, init="he")
    with pytest.raises(ValueError, match="gain must be finite and > 0"):
        PHMLinear(8, 8, gain=0.0)
    with pytest.raises(ValueError, match="kernel_size must be"):
        PHConv2d(8, 8, (3, 3, 3))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        PHMLinear(8, 8, n=0)


def test_nearest_factors_recover_a_ph_weight_and_approximate_a_dense_one():
    a, f = torch.randn(4, 4, 4, dtype=torch.float64), torch.randn(4, 3, 5, 2, dtype=torch.float64)
    w = compose_weight(a, f)
    a2, f2, err = nearest_ph_factors(w, 4)
    torch.testing.assert_close(compose_weight(a2, f2), w)
    assert err < 1e-10
    dense = torch.randn(8, 8, dtype=torch.float64)
    a3, f3, err = nearest_ph_factors(dense, 2)  # 4 rows in R: rank 2 keeps 2 of 4 values
    _, s, _ = torch.linalg.svd(dense.reshape(2, 4, 2, 4).movedim(2, 1).reshape(4, 16))
    assert err == pytest.approx((s[2:].norm() / s.norm()).item())
    resid = (compose_weight(a3, f3) - dense).norm() / dense.norm()
    assert resid.item() == pytest.approx(err)


def test_to_ph_layer_keeps_settings_scale_and_bias():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=1)
    ph, err = to_ph_layer(conv, 4)
    assert err is None and isinstance(ph, PHConv2d)
    assert (ph.stride, ph.padding, ph.kernel_size) == ((2, 2), (1, 1), (3, 3))
    torch.testing.assert_close(ph.bias, conv.bias)
    assert ph.gain == pytest.approx(math.sqrt(conv.weight.square().mean().item() * 72))
    x = torch.randn(2, 8, 6, 6)
    assert ph(x).shape == conv(x).shape
    with pytest.raises(ValueError, match="groups=2"):
        to_ph_layer(nn.Conv1d(8, 8, 3, groups=2), 4)
    with pytest.raises(ValueError, match="no PH version of Conv3d"):
        to_ph_layer(nn.Conv3d(8, 8, 3), 4)
