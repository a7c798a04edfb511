"""signalprop.models.mlp: structure, inits, and the theory's predictions on real torch MLPs.

Monte-Carlo tolerances: 4.5 standard errors of the mean over independently initialised
networks (~1 false alarm in 150,000 per comparison), plus the stated O(1/width) bias.
"""

import math

import numpy as np
import pytest
import torch

from signalprop import theory
from signalprop.models import MLP, mlp


def test_structure_forward_backward():
    torch.manual_seed(0)
    net = mlp(3, 32, "gelu", init="he", in_features=7, out_features=4)
    assert isinstance(net, MLP)
    assert [n for n, _ in net.named_children()] == ["fc0", "act0", "fc1", "act1", "fc2",
                                                    "act2", "head"]
    assert len(net.hidden_layers()) == 3
    y = net(torch.randn(5, 7))
    assert y.shape == (5, 4) and torch.isfinite(y).all()
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("init,activation,sw", [("critical", "relu", 2.0),
                                                ("critical", "tanh", 1.0),
                                                ("lecun", "selu", 1.0),
                                                ("he", "relu", 2.0)])
def test_inits_set_the_weight_variance(init, activation, sw):
    torch.manual_seed(0)
    net = mlp(2, 1024, activation, init=init)
    assert net.sigma_w2 == pytest.approx(sw, rel=1e-12)
    w = net.fc1.weight
    assert abs(w.var().item() * 1024 / sw - 1) < 4.5 * math.sqrt(2 / w.numel())


def test_torch_default_and_callable_inits():
    net = mlp(2, 8, init="torch")
    assert net.sigma_w2 is None
    seen = []
    mlp(2, 8, init=seen.append)
    assert len(seen) == 1 and isinstance(seen[0], MLP)


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        mlp(0, 8)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        mlp(2, 8.5)
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        mlp(2, 8, init="xavier")
    with pytest.raises(ValueError, match="unknown activation"):
        mlp(2, 8, "relux")
    with pytest.raises(ValueError, match="sigma_b2 must be finite and >= 0"):
        mlp(2, 8, sigma_b2=-1)


def _preactivations(net, x):
    out = []
    hooks = [m.register_forward_hook(lambda m, i, o: out.append(o.detach()))
             for m in net.hidden_layers()]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return out


@pytest.mark.parametrize("activation,sigma_b2,init", [("tanh", 0.05, "critical"),
                                                      ("relu", 0.0, "critical"),
                                                      ("selu", 0.0, "lecun")])
def test_per_layer_q_matches_the_q_map(activation, sigma_b2, init):
    width, depth, n_nets = 1024, 8, 6
    x = torch.randn(8, width, dtype=torch.float64)
    x = x / x.pow(2).mean(dim=1, keepdim=True).sqrt()  # |x|^2 / n = 1 for every input
    sims = []
    for seed in range(n_nets):
        torch.manual_seed(seed)
        net = mlp(depth, width, activation, init=init, sigma_b2=sigma_b2, dtype=torch.float64)
        sims.append([h.pow(2).mean().item() for h in _preactivations(net, x)])
    sims = np.array(sims)  # (networks, layers)
    q1 = net.sigma_w2 * 1.0 + net.sigma_b2  # first pre-activations: sigma_w^2 |x|^2/n + sigma_b^2
    pred = theory.propagate(activation, depth - 1, net.sigma_w2, net.sigma_b2, q0=q1).q
    mean, se = sims.mean(axis=0), sims.std(axis=0, ddof=1) / math.sqrt(n_nets)
    assert np.all(np.abs(mean - pred) <= 4.5 * se + 4.0 / width * pred), (mean, pred, se)


def test_gradient_scale_matches_the_prediction():
    # ordered tanh: backpropagated gradients shrink by chi(q_l) per layer
    width, depth, n_nets, sw, sb = 1024, 6, 6, 1.5, 0.05
    x = torch.randn(4, width, dtype=torch.float64)
    x = x / x.pow(2).mean(dim=1, keepdim=True).sqrt()
    ratios = []
    for seed in range(n_nets):
        torch.manual_seed(100 + seed)
        net = mlp(depth, width, "tanh", init=lambda m: None, dtype=torch.float64)
        for m in net.hidden_layers():
            torch.nn.init.normal_(m.weight, std=math.sqrt(sw / width))
            torch.nn.init.normal_(m.bias, std=math.sqrt(sb))
        hs = []

        def keep(module, inputs, output, hs=hs):
            output.retain_grad()
            hs.append(output)

        hooks = [m.register_forward_hook(keep) for m in net.hidden_layers()]
        out = net(x)
        (out * torch.randn_like(out)).sum().backward()  # dL/dh of the last layer: N(0, 1)
        for h in hooks:
            h.remove()
        g = np.array([h.grad.pow(2).mean().item() for h in hs])
        ratios.append(g / g[-1])
    ratios = np.array(ratios)
    pred = theory.propagate("tanh", depth - 1, sw, sb, q0=sw + sb).grad_scale
    mean, se = ratios.mean(axis=0), ratios.std(axis=0, ddof=1) / math.sqrt(n_nets)
    assert pred[0] < 0.8  # gradients do shrink here
    assert np.all(np.abs(mean - pred) <= 4.5 * se + 4.0 / width), (mean, pred, se)


def test_relu_kurtosis_grows_as_predicted_in_torch_mlps():
    # explicit weight matrices, one input per network: excess kurtosis of the
    # pre-activations vs the exact finite-width result 3((1 + 5/n)^(l-1) - 1)
    width, depth, n_nets = 64, 6, 400
    m2 = np.zeros((n_nets, depth))
    m4 = np.zeros((n_nets, depth))
    x = torch.randn(1, width, dtype=torch.float64)
    x = x / x.pow(2).mean().sqrt()
    for seed in range(n_nets):
        torch.manual_seed(seed)
        net = mlp(depth, width, "relu", dtype=torch.float64)
        for layer, h in enumerate(_preactivations(net, x)):
            m2[seed, layer] = h.pow(2).mean().item()
            m4[seed, layer] = h.pow(4).mean().item()
    groups = 20  # standard error from the spread over groups of networks
    g2, g4 = m2.reshape(groups, -1, depth).mean(1), m4.reshape(groups, -1, depth).mean(1)
    per_group = g4 / g2**2 - 3
    kurt = m4.mean(0) / m2.mean(0) ** 2 - 3
    se = per_group.std(0, ddof=1) / math.sqrt(groups)
    exact = theory.relu_kurtosis_exact(depth, width)
    assert kurt[-1] > 5 * se[-1]
    assert np.all(np.abs(kurt - exact) <= 4.5 * se), (kurt, exact, se)
    lead = theory.four_point_vertex("relu", depth, 2.0).excess_kurtosis(width)
    assert np.all(lead <= exact + 1e-12)  # leading order is the first term of the exact one
