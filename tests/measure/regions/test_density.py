"""region_density: boundaries per unit length along random lines through data."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from signalprop.measure import linear_regions, region_density
from signalprop.results import RegionDensityResult


def test_one_layer_counts_the_hyperplanes_each_line_crosses():
    """A ReLU layer's regions are cut by hyperplanes: a segment crosses neuron i's iff its
    pre-activation has opposite signs at the two ends (exact, independent)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 30), nn.ReLU(), nn.Linear(30, 1))
    x = torch.randn(6, 5)
    r = region_density(net, x, n_lines=3, length=2.5, seed=4)
    gen = torch.Generator().manual_seed(4)
    d = torch.randn(6, 3, 5, generator=gen, dtype=torch.float64)
    d = d / d.norm(dim=2, keepdim=True)
    a = (x.double()[:, None] - 1.25 * d).reshape(-1, 5)
    b = (x.double()[:, None] + 1.25 * d).reshape(-1, 5)
    W, c = net[0].weight.double(), net[0].bias.double()
    expected = ((a @ W.T + c > 0) != (b @ W.T + c > 0)).sum(1)
    assert r.counts == expected.tolist()
    assert r.density == pytest.approx(float(expected.double().mean()) / 2.5)
    assert r.n_neurons == 30 and r.depth == 1 and r.width == 30


def test_density_matches_linear_regions_on_the_same_lines():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                        nn.Linear(16, 3))
    x = torch.randn(3, 4)
    r = region_density(net, x, n_lines=2, length=3.0, seed=7)
    gen = torch.Generator().manual_seed(7)
    d = torch.randn(3, 2, 4, generator=gen, dtype=torch.float64)
    d = d / d.norm(dim=2, keepdim=True)
    lines = linear_regions(net, (x.double()[:, None] - 1.5 * d).reshape(-1, 4),
                           end=(x.double()[:, None] + 1.5 * d).reshape(-1, 4))
    assert r.counts == lines.n_breakpoints
    assert r.units_per_stage == [16, 16] and r.per_neuron == pytest.approx(r.density / 32)
    again = region_density(net, x, n_lines=2, length=3.0, seed=7)
    assert again.counts == r.counts
    assert RegionDensityResult.from_json(r.to_json()).counts == r.counts


def test_bad_options_are_refused():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with pytest.raises(ValueError, match="n_lines must be an integer >= 1"):
        region_density(net, torch.zeros(2, 2), n_lines=0)
    with pytest.raises(ValueError, match="length must be a finite number > 0"):
        region_density(net, torch.zeros(2, 2), length=-1.0)
