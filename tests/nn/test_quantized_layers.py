"""Quantized layers against independent computations: the quantization rules written out,
autograd through straight-through formulas, and the theory's variance gain."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop import theory
from signalprop.nn import (
    QuantConv1d,
    QuantConv2d,
    QuantLinear,
    WeightQuantizer,
    quantize_modules,
    quantized_layers,
)


def _reference_q(w, levels, scale, per_channel=False):
    """Q(w) from the rules, per tensor or per output row (no shared code)."""
    rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    out = []
    for r in rows:
        m = r.abs().mean()
        if levels == "binary":
            c = torch.where(r >= 0, 1.0, -1.0).to(r.dtype)
        elif levels == "ternary":
            c = torch.sign(r) * (r.abs() > 0.7 * m)
        else:
            top = 2 ** (levels - 1) - 1
            s = 2 * m / math.sqrt(top)
            c = torch.clamp(torch.round(r / s), -top, top)
        if scale == "mean_abs":
            alpha = (r * c).sum() / (c * c).sum()
        elif scale == "rms":
            alpha = torch.sqrt((r * r).mean() / (c * c).mean())
        else:
            alpha = 1.0 if isinstance(levels, str) else 2 * m / math.sqrt(2 ** (levels - 1) - 1)
        out.append(alpha * c)
    return torch.stack(out).reshape(w.shape)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("scale", ["mean_abs", "rms", None])
@pytest.mark.parametrize("levels", ["binary", "ternary", 2, 4])
def test_forward_matches_the_rules(levels, scale, per_channel):
    torch.manual_seed(0)
    layer = QuantLinear(24, 6, weight_levels=levels, scale=scale, per_channel=per_channel,
                        dtype=torch.float64)
    x = torch.randn(5, 24, dtype=torch.float64)
    q = _reference_q(layer.weight.detach(), levels, scale, per_channel)
    torch.testing.assert_close(layer.quantized_weight(), q)
    torch.testing.assert_close(layer(x), F.linear(x, q, layer.bias))
    state = layer.quantized_state()
    torch.testing.assert_close(state["scale"] * state["codes"].to(torch.float64), q)
    assert state["codes"].dtype == torch.int8
    assert set(state["codes"].unique().tolist()) <= set(theory.quantized.grid_codes(levels))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("scale", ["mean_abs", "rms"])
@pytest.mark.parametrize("estimator, params", [("ste", {}), ("clipped", {"limit": 0.05}),
                                               ("reste", {"o": 2.0})])
def test_binary_gradient_is_bc_straight_through_with_alpha(scale, per_channel, estimator,
                                                           params):
    """The fused quantizer's backward against autograd through sign-with-surrogate times
    the scale's formula."""
    from signalprop.nn import sign_surrogate

    torch.manual_seed(1)
    layer = QuantLinear(16, 4, weight_levels="binary", scale=scale, per_channel=per_channel,
                        estimator=estimator, estimator_params=params, dtype=torch.float64)
    x = torch.randn(7, 16, dtype=torch.float64)
    layer(x).square().sum().backward()
    w = layer.weight.detach().clone().requires_grad_(True)
    dims = (1,) if per_channel else (0, 1)
    if scale == "mean_abs":
        alpha = w.abs().mean(dims, keepdim=True)
    else:
        alpha = w.square().mean(dims, keepdim=True).sqrt()
    q = sign_surrogate(w, estimator, **params) * alpha
    F.linear(x, q, layer.bias.detach()).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, w.grad)


@pytest.mark.parametrize("estimator", ["ste", "clipped"])
def test_multilevel_gradient_passes_straight_through(estimator):
    torch.manual_seed(2)
    layer = QuantLinear(64, 32, weight_levels=3, estimator=estimator, dtype=torch.float64)
    with torch.no_grad():
        layer.weight[0, 0] = 50.0  # far beyond the grid's range (3 alpha)
    x = torch.randn(4, 64, dtype=torch.float64)
    layer(x).sum().backward()
    q = layer.quantized_weight().detach()
    grad = (torch.ones(4, dtype=torch.float64) @ x).expand(32, 64).clone()  # d sum(Q x) / dQ
    if estimator == "clipped":
        grad[0, 0] = 0.0
    torch.testing.assert_close(layer.weight.grad, grad)
    assert q[0, 0] == q.abs().max() < 1.0


def test_binary_inputs_and_convolutions_match_functional_forms():
    torch.manual_seed(3)
    conv = QuantConv2d(3, 5, 3, padding=1, stride=2, act_levels="binary", estimator="reste",
                       dtype=torch.float64)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    xs = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    want = F.conv2d(xs, _reference_q(conv.weight.detach(), "binary", "mean_abs"), conv.bias,
                    stride=2, padding=1)
    torch.testing.assert_close(conv(x), want)
    c1 = QuantConv1d(4, 6, 5, padding=2, groups=2, weight_levels="ternary")
    x1 = torch.randn(3, 4, 11)
    torch.testing.assert_close(c1(x1), F.conv1d(x1, _reference_q(c1.weight.detach(), "ternary",
                                                                "mean_abs"),
                                                c1.bias, padding=2, groups=2))


@pytest.mark.parametrize("init, weights", [("normal", "gaussian"), ("torch", "uniform")])
@pytest.mark.parametrize("levels, scale", [("binary", "mean_abs"), ("ternary", "mean_abs"),
                                           (4, "mean_abs"), ("binary", "rms")])
def test_variance_gain_at_init_matches_theory(levels, scale, init, weights):
    """Var(Q(W) x) / Var(W x) over 8 independent 512x512 layers; tolerance 4 standard
    errors of the mean ratio (the ratio of two outputs from the same x and W)."""
    ratios = []
    for seed in range(8):
        torch.manual_seed(seed)
        layer = QuantLinear(512, 512, bias=False, weight_levels=levels, scale=scale,
                            dtype=torch.float64)
        if init == "normal":
            nn.init.normal_(layer.weight, std=1 / math.sqrt(512))
        x = torch.randn(256, 512, dtype=torch.float64)
        with torch.no_grad():
            ratios.append(float(layer(x).var() / F.linear(x, layer.weight).var()))
    r = torch.tensor(ratios)
    se = float(r.std() / math.sqrt(len(ratios)))
    predicted = theory.quantized_variance_gain(levels, scale, weights=weights)
    assert abs(float(r.mean()) - predicted) < 4 * se + 2e-3, (float(r.mean()), predicted, se)


@pytest.mark.parametrize("levels", ["binary", "ternary", 3])
@pytest.mark.parametrize("scale", ["mean_abs", "rms", None])
def test_all_zero_weights_never_divide_by_zero(levels, scale):
    layer = QuantLinear(6, 3, weight_levels=levels, scale=scale, estimator="clipped"
                        if levels != "binary" else "reste")
    with torch.no_grad():
        layer.weight.zero_()
    x = torch.randn(4, 6)
    y = layer(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(layer.weight.grad).all()
    state = layer.quantized_state()
    assert torch.isfinite(state["scale"]).all()


def test_from_float_and_quantize_modules():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 8),
                        nn.Conv1d(1, 1, 1), nn.Linear(8, 2))
    w_before = net[3].weight.detach().clone()
    quantize_modules(net, exclude=["5"], weight_levels="ternary", scale="rms")
    assert [type(m).__name__ for m in net] == ["QuantConv2d", "ReLU", "Flatten", "QuantLinear",
                                               "QuantConv1d", "Linear"]
    torch.testing.assert_close(net[3].weight.detach(), w_before)
    assert [n for n, _ in quantized_layers(net)] == ["0", "3", "4"]
    assert "weight_levels='ternary'" in repr(net[3])
    with pytest.raises(ValueError, match="exclude names modules the model lacks"):
        quantize_modules(net, exclude=["head"])


def test_reste_schedule_is_read_at_every_forward():
    from signalprop.nn import ReSTESchedule

    sched = ReSTESchedule(total_steps=10)
    layer = QuantLinear(4, 1, bias=False, estimator="reste", estimator_params={"o": sched},
                        dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.05, 0.2, -0.4, 1.0]], dtype=torch.float64))
    grads = []
    for _ in range(2):
        layer.weight.grad = None
        layer(torch.ones(1, 4, dtype=torch.float64)).sum().backward()
        grads.append(layer.weight.grad.clone())
        sched.set_progress(1.0)
    assert not torch.allclose(grads[0], grads[1])  # o went from 1 to 3
    back = ReSTESchedule(3)
    back.load_state_dict(sched.state_dict())
    assert float(back) == 3.0


@pytest.mark.parametrize("kwargs, match", [
    ({"estimator": "sign"}, "unknown estimator 'sign'; valid: ste, clipped, tanh, reste"),
    ({"weight_levels": "octal"}, "weight_levels must be 'binary', 'ternary'"),
    ({"weight_levels": "ternary", "estimator": "tanh"}, "applies to binary weights"),
    ({"act_levels": "ternary"}, "act_levels must be None or 'binary'"),
    ({"scale": "max"}, "scale must be one of"),
    ({"estimator": "reste", "estimator_params": {"o": 0.5}}, "o must be >= 1"),
    ({"act_estimator": "nope"}, "unknown estimator 'nope'"),
    ({"bits": 4}, r"unknown quantization argument\(s\) \['bits'\]"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantLinear(4, 2, **kwargs)


def test_weight_quantizer_codes_and_threshold():
    q = WeightQuantizer("ternary", "mean_abs", threshold=0.0)
    c, a = q.codes(torch.tensor([0.5, -0.1, 0.0]))
    assert c.tolist() == [1.0, -1.0, 0.0] and a.item() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="threshold must be"):
        WeightQuantizer("ternary", threshold=-1)
