"""Scaled WS layers: the formula by hand, caching, gradients, eps conventions, drop-in use."""

import copy
import math
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop.nn.normfree.std_conv as std_conv
from signalprop.nn import ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, WSLinear


def hand_ws(w, gain, gamma, eps, mode):
    """W_hat_i = gain_i * gamma * (W_i - mean W_i) / (std W_i * sqrt(N)), written out in float64."""
    w = w.double()
    out = torch.empty_like(w)
    n = w[0].numel()
    for i in range(w.shape[0]):
        row = w[i].flatten()
        mean = row.sum() / n
        var = ((row - mean) ** 2).sum() / n  # biased
        if mode == "clamp":
            denom = math.sqrt(max(var.item() * n, eps))
        else:
            denom = math.sqrt((var.item() + eps) * n)
        out[i] = (w[i] - mean) * (gain[i].item() * gamma / denom)
    return out


CASES = [
    (ScaledStdConv1d, dict(in_channels=4, out_channels=6, kernel_size=3, padding=1), (2, 4, 9), F.conv1d),
    (ScaledStdConv2d, dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1), (2, 4, 7, 7), F.conv2d),
    (ScaledStdConv2d, dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, dilation=2), (2, 4, 9, 9), F.conv2d),
    (ScaledStdConv3d, dict(in_channels=3, out_channels=5, kernel_size=2), (2, 3, 4, 4, 4), F.conv3d),
]


@pytest.mark.parametrize("mode", ["clamp", "add"])
@pytest.mark.parametrize("cls,kw,shape,fn", CASES)
def test_conv_output_equals_hand_formula(cls, kw, shape, fn, mode):
    layer = cls(**kw, gamma=1.7, eps_mode=mode)
    with torch.no_grad():
        layer.gain.uniform_(0.5, 1.5)
        layer.bias.normal_()
    x = torch.randn(*shape)
    w_hat = hand_ws(layer.weight, layer.gain, 1.7, layer.eps, mode).float()
    conv_kw = {k: getattr(layer, k) for k in ("stride", "padding", "dilation", "groups")}
    expected = fn(x, w_hat, layer.bias, **conv_kw)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["clamp", "add"])
def test_linear_output_equals_hand_formula(mode):
    layer = WSLinear(10, 4, gamma=2.0, eps_mode=mode)
    x = torch.randn(3, 10)
    w_hat = hand_ws(layer.weight, layer.gain, 2.0, layer.eps, mode).float()
    torch.testing.assert_close(layer(x), F.linear(x, w_hat, layer.bias), rtol=1e-5, atol=1e-6)


def test_eps_conventions_differ_where_they_should():
    # Tiny weights: N*var = 9 * 1e-10 is far below the clamp floor 1e-4, so the clamp
    # caps the scale at 1/sqrt(1e-4) = 100, while "add" divides by sqrt(N (var + eps)).
    w = torch.randn(2, 1, 3, 3) * 1e-5
    for mode, eps in (("clamp", 1e-4), ("add", 1e-6)):
        layer = ScaledStdConv2d(1, 2, 3, bias=False, eps_mode=mode)
        assert layer.eps == eps
        with torch.no_grad():
            layer.weight.copy_(w)
        got = layer.standardized_weight().double()
        torch.testing.assert_close(got, hand_ws(w, torch.ones(2), 1.0, eps, mode), rtol=1e-4, atol=0)
    clamp = ScaledStdConv2d(1, 2, 3, bias=False)
    with torch.no_grad():
        clamp.weight.copy_(w)
    centred = (w - w.mean(dim=(1, 2, 3), keepdim=True)).double()
    torch.testing.assert_close(clamp.standardized_weight().double(), centred * 100, rtol=1e-4, atol=0)


def test_rows_are_standardized():
    layer = ScaledStdConv2d(16, 8, 3, gamma=1.0)
    w = layer.standardized_weight().flatten(1).double()
    torch.testing.assert_close(w.mean(1), torch.zeros(8, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close((w**2).sum(1), torch.ones(8, dtype=torch.float64), atol=1e-5, rtol=0)


def test_gradients_reach_weight_and_gain_and_match_autograd_of_formula():
    layer = ScaledStdConv2d(3, 4, 3, padding=1, gamma=1.3)
    x = torch.randn(2, 3, 5, 5)
    layer(x).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.gain.grad is not None and layer.gain.grad.abs().sum() > 0
    w = layer.weight.detach().clone().requires_grad_()
    g = layer.gain.detach().clone().requires_grad_()
    flat = w.flatten(1)
    mean = flat.mean(1, keepdim=True)
    var = ((flat - mean) ** 2).mean(1, keepdim=True)
    w_hat = (g.view(-1, 1) * 1.3 * (flat - mean) / torch.sqrt(torch.clamp(var * 27, min=1e-4)))
    F.conv2d(x, w_hat.view_as(w), layer.bias.detach(), padding=1).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, w.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.gain.grad, g.grad, rtol=1e-4, atol=1e-5)


def _count_standardizations(monkeypatch):
    calls = []
    real = std_conv.standardize_weight

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(std_conv, "standardize_weight", counting)
    return calls


def test_eval_cache_equals_training_path_and_is_reused(monkeypatch):
    layer = ScaledStdConv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 6, 6)
    y_train = layer(x).detach()
    calls = _count_standardizations(monkeypatch)
    layer.eval()
    with torch.no_grad():
        y1 = layer(x)
        y2 = layer(x)
    assert len(calls) == 1  # computed once, then served from the cache
    torch.testing.assert_close(y1, y_train)
    torch.testing.assert_close(y2, y_train)


def test_cache_refreshes_after_optimizer_step_and_load_state_dict():
    layer = ScaledStdConv2d(4, 6, 3, padding=1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    x = torch.randn(2, 4, 6, 6)
    layer.eval()
    with torch.no_grad():
        before = layer(x)
    layer.train()
    layer(x).square().sum().backward()
    opt.step()
    layer.eval()
    with torch.no_grad():
        after = layer(x)
    fresh = F.conv2d(x, hand_ws(layer.weight, layer.gain, 1.0, 1e-4, "clamp").float(),
                     layer.bias, padding=1)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, fresh, rtol=1e-5, atol=1e-5)
    # load_state_dict writes in place: the version counter moves and the cache follows.
    other = ScaledStdConv2d(4, 6, 3, padding=1)
    layer.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer(x), other.eval()(x))
    # a dtype change swaps the storage
    layer.double()
    with torch.no_grad():
        assert layer(x.double()).dtype == torch.float64


def test_no_grad_train_mode_uses_cache_but_grad_mode_does_not(monkeypatch):
    layer = ScaledStdConv2d(2, 2, 1)
    calls = _count_standardizations(monkeypatch)
    x = torch.randn(1, 2, 3, 3)
    with torch.no_grad():
        layer(x)
        layer(x)
    assert len(calls) == 1
    layer(x).sum().backward()  # needs a graph: recomputed, gradients flow
    assert len(calls) == 2 and layer.gain.grad is not None


def test_output_variance_is_gamma_squared_for_gaussian_input():
    torch.manual_seed(1)
    layer = ScaledStdConv2d(64, 32, 3, gamma=1.5, bias=False)
    x = torch.randn(64, 64, 12, 12)
    with torch.no_grad():
        y = layer(x)
    # Var(y) = gamma^2 * sum_j w_hat_j^2 = gamma^2 exactly in expectation. The channel
    # variances average 32 * 64 * 100 nearly independent samples: SE ~ sqrt(2/204800).
    tol = 5 * math.sqrt(2 / y.numel()) * 2.25
    assert abs(y.var().item() - 2.25) < tol + 0.01  # + small correlation between taps


def test_drop_in_constructor_device_dtype_and_state_dict():
    ref = nn.Conv2d(3, 8, 3, 2, 1, 1, 1, False, "zeros")
    ws = ScaledStdConv2d(3, 8, 3, 2, 1, 1, 1, False, "zeros", dtype=torch.float64)
    assert ws.weight.shape == ref.weight.shape and ws.bias is None
    assert ws.weight.dtype == ws.gain.dtype == torch.float64
    assert set(ws.state_dict()) == {"weight", "gain"}
    lin = WSLinear(5, 3, device="cpu", gain_init=0.5)
    assert torch.all(lin.gain == 0.5) and torch.all(lin.bias == 0)
    with pytest.raises(ValueError, match="eps_mode must be 'clamp' or 'add', got 'mul'"):
        WSLinear(5, 3, eps_mode="mul")
    with pytest.raises(ValueError, match="eps must be > 0"):
        WSLinear(5, 3, eps=0.0)


def test_copies_and_pickles_drop_the_cache():
    layer = ScaledStdConv2d(2, 2, 1).eval()
    with torch.no_grad():
        layer(torch.randn(1, 2, 2, 2))
    assert layer._cache is not None
    assert copy.deepcopy(layer)._cache is None
    assert pickle.loads(pickle.dumps(layer))._cache is None


def test_traceable_and_exportable():
    model = nn.Sequential(ScaledStdConv2d(2, 4, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(1, 2, 5, 5)
    gm = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(gm(x), model(x))
    ep = torch.export.export(model, (x,))
    torch.testing.assert_close(ep.module()(x), model(x))
