"""plane_regions: the regions of a 2-D slice, against independent computations."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn as nn

from signalprop.measure import plane_regions
from signalprop.models import relu_region_net, ternary_region_net
from signalprop.results import PlaneRegionsResult

from ._reference import hook_patterns


def _assert_polygons_are_regions(r: PlaneRegionsResult, patterns, origin, u, v) -> None:
    """The polygons are exactly the regions iff they tile the rectangle, each lies in one
    region (pattern at its vertices = at its centroid: regions are convex) and no two lie
    in the same region (patterns all different)."""
    s0, s1, r0, r1 = r.bounds
    assert sum(r.areas) == pytest.approx((s1 - s0) * (r1 - r0), rel=1e-9)
    polys = r.polygons()
    pts, owner = [], []
    for i, p in enumerate(polys):
        c = p.mean(0)
        pts += [c] + [c + (1 - 1e-7) * (q - c) for q in p]
        owner += [i] * (1 + len(p))
    st = torch.stack(pts)
    shape = (-1,) + (1,) * u.dim()
    x = origin + st[:, 0].reshape(shape) * u + st[:, 1].reshape(shape) * v
    pats = patterns(x)
    owner_t = torch.tensor(owner)
    for i in range(len(polys)):
        mine = pats[owner_t == i]
        assert (mine == mine[0]).all(), f"polygon {i} holds two patterns"
    centres = [tuple(pats[owner_t == i][0].tolist()) for i in range(len(polys))]
    assert len(set(centres)) == len(polys), "two polygons lie in one region"


def test_a_relu_layer_cuts_the_square_into_quadrants():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
    r = plane_regions(net, torch.zeros(1, 2))
    assert r.count == 4 and sorted(r.areas) == [1.0] * 4 and r.stages == ["relu[2]"]


@pytest.mark.parametrize("seed", range(3))
def test_one_layer_matches_the_arrangement_formula(seed):
    """n lines in general position cut a convex set into 1 + (lines crossing it) +
    (crossing points inside it) pieces."""
    gen = torch.Generator().manual_seed(seed)
    n = 12
    net = nn.Sequential(nn.Linear(2, n), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(n, 2, generator=gen, dtype=torch.float64))
        net[0].bias.copy_(torch.randn(n, generator=gen, dtype=torch.float64))
    W, b = net[0].weight.double(), net[0].bias.double()
    box = (-1.5, 1.0, -1.0, 2.0)
    corners = torch.tensor(list(itertools.product(box[:2], box[2:])), dtype=torch.float64)
    crossing = ((corners @ W.T + b > 0).any(0) & (corners @ W.T + b < 0).any(0)).sum()
    inside = 0
    for i, j in itertools.combinations(range(n), 2):
        p = torch.linalg.solve(W[[i, j]], -b[[i, j]])
        inside += int(box[0] < p[0] < box[1] and box[2] < p[1] < box[3])
    r = plane_regions(net, torch.zeros(1, 2), bounds=box)
    assert r.count == 1 + int(crossing) + inside


@pytest.mark.parametrize("seed", range(3))
def test_polygons_of_a_deep_net_are_its_regions(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.LeakyReLU(0.2),
                        nn.Linear(8, 6), nn.Hardtanh(), nn.Linear(6, 1))
    origin, u, v = torch.randn(1, 3), torch.randn(3), torch.randn(3)
    r = plane_regions(net, origin, u=u, v=v, bounds=(-2, 2, -1, 3))
    twin = copy.deepcopy(net).double()
    _assert_polygons_are_regions(r, lambda x: hook_patterns(twin, x), origin.double(),
                                 u.double(), v.double())
    assert r.count > 20


def test_max_pool_cells_are_regions():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(8, 1))
    origin, u, v = torch.randn(1, 1, 4, 4), torch.randn(1, 4, 4), torch.randn(1, 4, 4)
    r = plane_regions(net, origin, u=u, v=v)
    twin = copy.deepcopy(net).double()
    _assert_polygons_are_regions(r, lambda x: hook_patterns(twin, x), origin.double(),
                                 u.double(), v.double())


def test_constructions_make_their_grids():
    net = relu_region_net([6, 6], input_dim=2)
    assert plane_regions(net, torch.zeros(1, 2), bounds=(0, 1, 0, 1)).count == net.regions
    tern = ternary_region_net([2, 3], input_dim=2, copies="relu")
    r = plane_regions(tern, torch.zeros(1, 2), bounds=(0, 2, 0, 2))
    assert r.count == tern.regions == 36


def test_step_units_cut_at_thresholds():
    class Floor(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.floor(2 * x).sum(1, keepdim=True)

    r = plane_regions(Floor(), torch.zeros(1, 2), bounds=(0.1, 1.1, 0.1, 1.1))
    assert r.count == 9  # lines x = 0.5, 1 in each coordinate


def test_values_and_gradients_are_the_model_on_each_region():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 2))
    r = plane_regions(net, torch.zeros(1, 2))
    cent = torch.stack([p.mean(0) for p in r.polygons()])
    assert torch.allclose(r.values, net.double()(cent))
    x = cent.clone().requires_grad_(True)
    for k in range(2):
        (g,) = torch.autograd.grad(net.double()(x)[:, k].sum(), x)
        assert torch.allclose(r.gradients[:, k], g)
    back = PlaneRegionsResult.from_json(r.to_json())
    assert back.count == r.count and back.sizes == r.sizes
    assert torch.equal(back.vertices, r.vertices)


def test_bad_slices_get_clear_errors():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="u and v are parallel"):
        plane_regions(net, x, u=torch.ones(3), v=2 * torch.ones(3))
    with pytest.raises(ValueError, match="u and v are needed for inputs of shape"):
        plane_regions(net, x)
    with pytest.raises(ValueError, match="give both u and v"):
        plane_regions(net, x, u=torch.ones(3))
    with pytest.raises(ValueError, match=r"x must hold one origin"):
        plane_regions(net, torch.zeros(2, 3), u=torch.ones(3), v=torch.arange(3.0))
    with pytest.raises(ValueError, match="bounds must be four finite numbers"):
        plane_regions(net, x, u=torch.ones(3), v=torch.arange(3.0), bounds=(1, 0, 0, 1))
