"""Region plots write their figures from result objects."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.results import RegionDensityResult


@pytest.fixture
def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))


def test_plane_picture_has_one_patch_per_region(net, tmp_path):
    r = sp.plane_regions(net, torch.zeros(1, 2))
    for color in ("pattern", "output"):
        fig = sp.plot.plane_regions(r, tmp_path / f"{color}.png", color=color)
        assert len(fig.axes[0].collections[0].get_paths()) == r.count
        assert (tmp_path / f"{color}.png").stat().st_size > 0
    with pytest.raises(ValueError, match="color must be"):
        sp.plot.plane_regions(r, color="nope")


def test_segment_and_density_plots(net, tmp_path):
    r = sp.linear_regions(net, torch.zeros(2, 2), end=torch.ones(2, 2))
    sp.plot.linear_regions(r, tmp_path / "line.png")
    d = [RegionDensityResult(f"w{w}", [w * k for k in (2, 3)], 1.0, 2, 1, w * k, [w] * k)
         for w in (4, 8) for k in (1, 2)]
    fig = sp.plot.region_density(d, tmp_path / "d.png", x="neurons")
    assert fig.axes[0].get_xscale() == "log" and (tmp_path / "d.png").stat().st_size > 0
    with pytest.raises(ValueError, match="x must be one of"):
        sp.plot.region_density(d, x="layers")
