"""Region constructions and random ternary MLPs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from signalprop import theory
from signalprop.measure import linear_regions
from signalprop.models import relu_region_net, ternary_mlp, ternary_region_net


def test_relu_construction_folds_the_unit_interval():
    net = relu_region_net([3, 4])
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)[:, None]
    y = net(t).detach().flatten()
    assert float(y.min()) == pytest.approx(0.0, abs=1e-12)  # every tooth maps onto [0, 1]
    assert 1 - 1e-3 < float(y.max()) <= 1 + 1e-12
    assert net.teeth == [4, 5] and net.regions == 20


def test_ternary_copies_give_the_documented_widths():
    widths = {c: [m.out_features for m in ternary_region_net([3, 3], copies=c)
                  if isinstance(m, nn.Linear)] for c in theory.regions.COPIES}
    assert widths == {"identity": [5, 3, 5, 1], "relu": [5, 3, 5, 1], "width": [15, 5, 1]}
    assert isinstance(ternary_region_net([3, 3], copies="relu").copy_act0, nn.ReLU)


def test_ternary_doubled_depth_matches_the_general_relu_network():
    n, depth = 3, 3
    general = relu_region_net([n] * depth)
    ternary = ternary_region_net([n + 1] * depth)  # ReLU width 2n + 1, identity layers
    count = linear_regions(ternary, torch.zeros(1, 1), end=torch.full((1, 1), n + 1.0))
    assert count.counts[0] == general.regions == (n + 1) ** depth


def test_ternary_mlp_has_the_regions_of_the_scaled_network():
    net = ternary_mlp(3, 12, in_features=4, seed=2)
    scaled = nn.Sequential(*[type(m)() if isinstance(m, nn.ReLU) else nn.Linear(
        m.in_features, m.out_features) for m in net])
    cumulative = 1.0
    with torch.no_grad():
        for (a, b), alpha in zip([(m, s) for m, s in zip(net, scaled)
                                  if isinstance(m, nn.Linear)], net.scales):
            cumulative *= alpha
            b.weight.copy_(alpha * a.weight)
            b.bias.copy_(a.bias * cumulative)
    x, end = torch.randn(3, 4), torch.randn(3, 4)
    mine = linear_regions(net, x, end=end)
    theirs = linear_regions(scaled, x, end=end)
    assert mine.counts == theirs.counts
    assert torch.allclose(mine.breakpoints, theirs.breakpoints, atol=1e-9)
    assert set(torch.cat([m.weight.flatten() for m in net if isinstance(m, nn.Linear)])
               .tolist()) == {-1.0, 0.0, 1.0}


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="teeth must be a non-empty list"):
        ternary_region_net([0])
    with pytest.raises(ValueError, match="width must be >= input_dim"):
        relu_region_net([1], input_dim=2)
    with pytest.raises(ValueError, match="threshold must be finite and > 0"):
        ternary_mlp(1, 4, 2, threshold=0.0)
