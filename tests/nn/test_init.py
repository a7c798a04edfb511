"""torch initializers built on the theory layer."""

import math

import pytest
import torch
import torch.nn as nn

from signalprop import theory
from signalprop.nn.init import critical_, delta_orthogonal_, lecun_normal_


def _net():
    return nn.Sequential(nn.Linear(300, 400), nn.Tanh(), nn.Conv1d(4, 8, 5), nn.Linear(400, 10))


def test_critical_sets_weight_and_bias_variances():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1000, 1000), nn.Tanh(), nn.Linear(1000, 1000))
    sw = critical_(net, "tanh", sigma_b2=0.05)
    assert sw == pytest.approx(theory.critical_point("tanh", 0.05).sigma_w2, rel=1e-14)
    w = net[0].weight
    n = w.numel()
    # sample variance of n Gaussian draws: relative standard error sqrt(2 / n)
    assert abs(w.var().item() * 1000 / sw - 1) < 4.5 * math.sqrt(2 / n)
    assert abs(w.mean().item()) < 4.5 * math.sqrt(sw / 1000 / n)
    b = net[0].bias
    assert abs(b.var().item() / 0.05 - 1) < 4.5 * math.sqrt(2 / b.numel())


def test_critical_covers_convs_with_their_fan_in_and_zero_bias_without_sigma_b():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 64, 3, groups=2)
    net = nn.Sequential(conv)
    assert critical_(net, "relu") == 2.0
    fan_in = 8 * 9
    rel_se = math.sqrt(2 / conv.weight.numel())
    assert abs(conv.weight.var().item() * fan_in / 2.0 - 1) < 4.5 * rel_se
    assert torch.all(conv.bias == 0)


def test_critical_uses_activation_parameters():
    net = nn.Sequential(nn.Linear(10, 10))
    assert critical_(net, "leaky_relu", negative_slope=0.5) == pytest.approx(2 / 1.25)


def test_critical_rejects_models_without_layers_and_bad_inputs():
    with pytest.raises(ValueError, match="no Linear or Conv layers"):
        critical_(nn.Sequential(nn.Tanh()), "tanh")
    with pytest.raises(ValueError, match="unknown activation"):
        critical_(_net(), "tanhh")
    with pytest.raises(ValueError, match="sigma_b2 must be >= 0"):
        critical_(_net(), "tanh", sigma_b2=-1.0)
    with pytest.raises(ValueError, match="no critical point"):
        critical_(_net(), "gelu")


def test_lecun_normal_tensor_and_module():
    torch.manual_seed(0)
    w = lecun_normal_(torch.empty(512, 2048))
    assert abs(w.var().item() * 2048 - 1) < 4.5 * math.sqrt(2 / w.numel())
    net = _net()
    assert lecun_normal_(net) is net
    assert torch.all(net[0].bias == 0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        lecun_normal_(torch.empty(5))


@pytest.mark.parametrize("shape", [(8, 8, 3, 3), (16, 4, 5), (4, 16, 3, 3, 3)])
def test_delta_orthogonal_is_an_isometry_at_the_centre(shape):
    w = delta_orthogonal_(torch.empty(shape), gain=1.3)
    centre = w[(slice(None), slice(None), *[k // 2 for k in shape[2:]])]
    out, inp = shape[:2]
    gram = centre.T @ centre if out >= inp else centre @ centre.T
    assert torch.allclose(gram, 1.69 * torch.eye(min(out, inp)), atol=1e-5)
    off = w.clone()
    off[(slice(None), slice(None), *[k // 2 for k in shape[2:]])] = 0
    assert torch.all(off == 0)


def test_delta_orthogonal_conv_preserves_the_norm():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    delta_orthogonal_(conv.weight)
    x = torch.randn(2, 16, 10, 10)
    assert torch.allclose(conv(x).norm(), x.norm(), rtol=1e-5)
    with pytest.raises(ValueError, match=">= 3 dimensions"):
        delta_orthogonal_(torch.empty(4, 4))
    with pytest.raises(ValueError, match="gain must be finite and > 0"):
        delta_orthogonal_(torch.empty(4, 4, 3), gain=0.0)


def test_alpha_dropout_constants_agree_with_torch():
    # torch's AlphaDropout must keep mean 0 / variance 1 on SELU outputs; so do ours, and
    # with the same constants the two transforms coincide.
    torch.manual_seed(0)
    x = torch.nn.functional.selu(torch.randn(1_000_000, dtype=torch.float64))
    y = torch.nn.AlphaDropout(0.1).train()(x)
    a, b = theory.alpha_dropout_constants(0.1)
    dropped = (y - (a * x + b)).abs() > 1e-9
    assert torch.allclose(y[dropped], torch.tensor(a * -theory.SELU_LAMBDA * theory.SELU_ALPHA
                                                   + b, dtype=torch.float64), atol=1e-6)
    assert abs(dropped.double().mean().item() - 0.1) < 4.5 * math.sqrt(0.09 / x.numel())
