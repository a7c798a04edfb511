"""to_phm: which layers become PH, what the report says, exact recovery of PH weights."""

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.nn import PHConv1d, PHMLinear, compose_weight


def _net():
    return nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Conv1d(8, 16, 3, groups=2),
                         nn.Conv1d(16, 16, 3), nn.Flatten(), nn.Linear(16 * 34, 10))


def test_converts_what_the_sizes_allow_and_reports_the_rest():
    net = _net()
    new, report = sp.convert.to_phm(net, n=4)
    assert isinstance(new[3], PHConv1d) and type(new[0]) is nn.Conv1d
    assert type(net[3]) is nn.Conv1d  # the original is untouched
    refused = {c.module: c.detail for c in report.not_converted}
    assert set(refused) == {"0", "2", "5"}
    assert "in_features=1 is not divisible by n=4" in refused["0"]
    assert "groups=2" in refused["2"] and "out_features=10" in refused["5"]
    assert str(report.changes[0]) == "3: Conv1d -> PHConv1d (weights 768 -> 256)"
    x = torch.randn(2, 1, 40)
    assert new(x).shape == net(x).shape


def test_init_keeps_each_layers_weight_scale_and_exclude_keeps_layers_dense():
    net = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    new, report = sp.convert.to_phm(net, n=4, exclude=["1"])
    assert isinstance(new[0], PHMLinear) and type(new[1]) is nn.Linear
    assert new[0].gain == pytest.approx((net[0].weight.square().mean() * 64).sqrt().item())
    assert report.not_converted[0].detail == "excluded"
    with pytest.raises(ValueError, match="exclude names modules"):
        sp.convert.to_phm(net, exclude=["head"])


def test_nearest_recovers_a_ph_weight_exactly_and_reports_the_error_of_a_dense_one():
    lin = nn.Linear(8, 12, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(compose_weight(torch.randn(4, 4, 4, dtype=torch.float64),
                                        torch.randn(4, 3, 2, dtype=torch.float64)))
    new, report = sp.convert.to_phm(nn.Sequential(lin), n=4, weights="nearest")
    x = torch.randn(5, 8, dtype=torch.float64)
    torch.testing.assert_close(new(x), lin(x))
    assert "relative error" in report.changes[0].detail
    dense = nn.Sequential(nn.Linear(16, 16))
    _, report = sp.convert.to_phm(dense, n=2, weights="nearest")
    err = float(report.changes[0].detail.rsplit(" ", 1)[1])
    assert 0.3 < err < 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        sp.convert.to_phm(_net(), n=0)
    with pytest.raises(ValueError, match="weights='svd' is not allowed"):
        sp.convert.to_phm(_net(), weights="svd")
    _, report = sp.convert.to_phm(nn.Sequential(nn.ReLU()))
    assert report.not_converted[0].action == "nothing to convert"
