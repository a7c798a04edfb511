"""effective_lr: values by hand per optimizer group, scale invariance found by doubling."""

import math

import pytest
import torch
import torch.nn as nn

import signalprop as sp


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, 3))


def test_values_per_group_by_hand():
    net = _net()
    opt = torch.optim.SGD([{"params": net[0].parameters(), "lr": 0.5, "weight_decay": 1e-3},
                           {"params": net[3].parameters(), "lr": 0.1}], lr=0.1, momentum=0.9)
    r = sp.measure.effective_lr(net, opt)
    assert r.names == ["0.weight", "3.weight"]
    w0, w3 = net[0].weight.detach().double(), net[3].weight.detach().double()
    assert r.records[0].effective_lr == pytest.approx(0.5 / w0.square().sum().item())
    assert r.records[1].effective_lr == pytest.approx(0.1 / w3.square().sum().item())
    assert (r.records[0].momentum, r.records[0].weight_decay) == (0.9, 1e-3)
    assert r.records[0].scale_invariant is None
    adam = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.8, 0.99))
    everything = sp.measure.effective_lr(net, adam, params="all")
    assert everything.names == [n for n, _ in net.named_parameters()]
    assert everything.records[0].momentum == 0.8


def test_scale_invariance_is_found_in_train_mode_only():
    net = _net()
    with torch.no_grad():
        net[1].bias.fill_(0.5)  # a zero bias is trivially unchanged when doubled
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(32, 6)
    w = net[0].weight.detach().clone()
    stats = net[1].running_var.clone()
    r = sp.measure.effective_lr(net, opt, x=x, params="all")
    flags = {rec.name: rec.scale_invariant for rec in r.records}
    assert flags == {"0.weight": True, "1.weight": False, "1.bias": False,
                     "3.weight": False, "3.bias": False}
    assert torch.equal(net[0].weight, w) and torch.equal(net[1].running_var, stats)
    net.eval()  # running statistics: doubling the weight doubles the normalized output
    assert sp.measure.effective_lr(net, opt, x=x).records[0].scale_invariant is False


def test_zero_weight_and_bad_arguments():
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.zero_()
    r = sp.measure.effective_lr(lin, torch.optim.SGD(lin.parameters(), lr=0.1))
    assert math.isinf(r.records[0].effective_lr)
    other = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="optimizer updates no weight parameter"):
        sp.measure.effective_lr(lin, torch.optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="params='biases' is not allowed"):
        sp.measure.effective_lr(lin, torch.optim.SGD(lin.parameters(), lr=0.1),
                                params="biases")
    back = sp.EffectiveLRResult.from_json(r.to_json())
    assert back.records[0].name == "weight" and back.by_name() == r.by_name()
