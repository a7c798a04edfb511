"""linear_regions: exact pieces along segments, against independent computations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop as sp
from signalprop.measure import NotAffineError, linear_regions
from signalprop.models import relu_region_net, ternary_region_net
from signalprop.results import RegionsResult
from signalprop.theory import relu_construction_count, ternary_construction_count

from ._reference import hook_patterns, walk


def _dyadic_mlp(sizes: list[int], act: nn.Module, seed: int) -> nn.Sequential:
    """An MLP with weights k/4 and biases k/8: exact in binary, ties are common."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randint(-4, 5, (b, a), generator=gen) / 4)
            lin.bias.copy_(torch.randint(-8, 9, (b,), generator=gen) / 8)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(copy.deepcopy(act))
    return nn.Sequential(*layers)


def test_two_relus_have_their_breakpoints_values_and_slopes():
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net[0].bias.copy_(torch.tensor([-0.5, 1.5]))  # kinks at x = 0.5 and x = 1.5
        net[2].weight.copy_(torch.tensor([[2.0, 3.0]]))
        net[2].bias.zero_()
    r = linear_regions(net, torch.tensor([[0.0]]), end=torch.tensor([[2.0]]))
    assert r.counts == [3] and r.jumps == [False, False]
    assert torch.allclose(r.breakpoints, torch.tensor([0.25, 0.75], dtype=torch.float64))
    # f = 2 relu(x - 0.5) + 3 relu(1.5 - x); x = 2t: slopes per unit t are 2 * f'(x)
    assert r.slopes.flatten().tolist() == pytest.approx([-6.0, -2.0, 4.0])
    mids = torch.tensor([[0.25], [1.0], [1.75]], dtype=torch.float64)
    assert torch.allclose(r.values, net.double()(mids))
    assert len(set(r.patterns)) == 3 and r.lengths == [2.0] and r.density == [1.0]


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.25), nn.Hardtanh(-0.5, 1.0)],
                         ids=["relu", "leaky", "hardtanh"])
@pytest.mark.parametrize("seed", range(4))
def test_breakpoints_equal_the_exact_rational_walk(act, seed):
    net = _dyadic_mlp([2, 5, 5, 4, 1], act, seed)
    gen = torch.Generator().manual_seed(100 + seed)
    start = torch.randint(-16, 17, (3, 2), generator=gen) / 4
    end = torch.randint(-16, 17, (3, 2), generator=gen) / 4 + 0.125
    r = linear_regions(net, start, end=end)
    for i in range(3):
        exact = [float(t) for t in walk(net, start[i], end[i])]
        assert r.segment(i).breakpoints == pytest.approx(exact, abs=1e-9), (seed, i)


def _residual_cnn() -> nn.Module:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
            self.act, self.conv2 = nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv2(self.act(self.bn(self.conv1(x))))

    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), Block(), nn.MaxPool2d(2),
                        nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(12, 6), nn.Hardtanh(),
                        nn.Linear(6, 2))
    with torch.no_grad():
        net[2].bn.running_mean.uniform_(-0.2, 0.2)
        net[2].bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _assert_pieces_are_regions(r: RegionsResult, x: torch.Tensor, end: torch.Tensor,
                               patterns) -> None:
    """Regions are convex, so a segment meets each in one interval: the pieces are exactly
    the regions met iff the (independently computed) pattern is constant on each piece and
    differs between any two pieces."""
    for i in range(x.shape[0]):
        bps = torch.tensor([0.0, *r.segment(i).breakpoints, 1.0], dtype=torch.float64)
        a, b = bps[:-1], bps[1:]
        ts = torch.stack([a + 1e-7 * (b - a), (a + b) / 2, b - 1e-7 * (b - a)], 1)
        d = end[i].double() - x[i].double()
        pts = x[i].double() + ts.reshape(-1, *([1] * d.dim())) * d
        pats = patterns(pts).reshape(len(a), 3, -1)
        assert (pats == pats[:, 1:2]).all(), i  # one pattern per piece
        assert len({tuple(p.tolist()) for p in pats[:, 1]}) == len(a), i  # all different


def test_each_piece_is_one_region_and_every_region_is_a_piece():
    net = _residual_cnn()
    x, end = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    r = linear_regions(net, x, end=end)
    twin = copy.deepcopy(net).double()
    _assert_pieces_are_regions(r, x, end, lambda pts: hook_patterns(twin, pts))
    assert r.stages == ["relu[48]", "relu[48]", "max_pool2d[12]", "leaky_relu[12]",
                        "hardtanh[6]"]


def test_dense_sampling_finds_the_same_count():
    """Sampling at a spacing below half the smallest gap between breakpoints (from the
    exact result) sees every piece; its count of pattern changes must agree."""
    net = _residual_cnn()
    x, end = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    r = linear_regions(net, x, end=end)
    twin = copy.deepcopy(net).double()
    for i in range(2):
        bps = torch.tensor([0.0, *r.segment(i).breakpoints, 1.0])
        n = int(2.0 / (bps[1:] - bps[:-1]).min()) + 1
        assert n < 400_000
        ts = torch.linspace(0, 1, n + 1, dtype=torch.float64)
        pts = x[i].double() + ts.reshape(-1, 1, 1, 1) * (end[i].double() - x[i].double())
        pats = hook_patterns(twin, pts)
        assert int((pats[1:] != pats[:-1]).any(1).sum()) + 1 == r.counts[i]


@pytest.mark.parametrize("widths", [[3], [3, 3], [4, 5, 3], [2, 2], [1, 1, 1], [7, 3]])
def test_relu_construction_has_its_count(widths):
    net = relu_region_net(widths)
    r = linear_regions(net, torch.zeros(1, 1), end=torch.ones(1, 1))
    assert r.counts == [relu_construction_count(widths)] == [net.regions]
    if min(widths) >= 3:  # no regions outside the domain: the count over R
        wide = linear_regions(net, -torch.ones(1, 1), end=2 * torch.ones(1, 1))
        assert wide.counts == r.counts


@pytest.mark.parametrize("copies", ["identity", "relu", "width"])
@pytest.mark.parametrize("teeth", [[3], [2, 3], [3, 2, 4]])
def test_ternary_construction_has_its_count(teeth, copies):
    net = ternary_region_net(teeth, copies=copies)
    weights = torch.cat([m.weight.flatten() for m in net if isinstance(m, nn.Linear)])
    assert set(weights.tolist()) <= {-1.0, 0.0, 1.0}
    r = linear_regions(net, torch.zeros(1, 1), end=torch.full((1, 1), float(teeth[0])))
    assert r.counts == [ternary_construction_count(teeth)]


def test_pieces_do_not_depend_on_batching_or_chunks():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                        nn.Linear(16, 2))
    x, end = torch.randn(5, 3), torch.randn(5, 3)
    together = linear_regions(net, x, end=end, chunk=7)
    for i in range(5):
        alone = linear_regions(net, x[i:i + 1], end=end[i:i + 1])
        assert alone.counts[0] == together.counts[i]
        assert torch.allclose(alone.breakpoints, torch.tensor(together.segment(i).breakpoints,
                                                              dtype=torch.float64))
        assert alone.patterns == together.segment(i).patterns


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 6), nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))
        return torch.maximum(self.b(h).clamp(-0.5, 0.5), h.abs() - 1).sum(1, keepdim=True)

    def patterns(self, x: torch.Tensor) -> torch.Tensor:
        """The states of its functional units, written out by hand."""
        with torch.no_grad():
            z = self.a(x)
            h = z.clamp_min(0)
            y = self.b(h)
            c = y.clamp(-0.5, 0.5)
            return torch.cat([z > 0, (y > -0.5).long() + (y > 0.5).long(), h > 0,
                              c >= h.abs() - 1], 1).long()


def test_functional_units_count_like_modules():
    torch.manual_seed(1)
    net = _Functional()
    x, end = 3 * torch.randn(3, 2), 3 * torch.randn(3, 2)
    r = linear_regions(net, x, end=end)
    assert [s.split("[")[0] for s in r.stages] == ["relu", "clamp", "abs", "maximum"]
    assert r.n_neurons == 24 and min(r.counts) > 3
    _assert_pieces_are_regions(r, x, end, copy.deepcopy(net).double().patterns)


def test_step_units_make_jumps():
    class Quant(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = torch.round(2 * x)
            return F.relu(x - 0.3) + (x + (q - x).detach())  # straight-through form

    r = linear_regions(Quant(), torch.zeros(1, 1), end=torch.full((1, 1), 2.0))
    # round(2x) jumps at x = 0.25, 0.75, 1.25, 1.75; relu kinks at 0.3
    assert r.segment(0).breakpoints == pytest.approx([0.125, 0.15, 0.375, 0.625, 0.875])
    assert r.segment(0).jumps == [True, False, True, True, True] and r.n_jumps == [4]
    assert r.stages == ["round[1]", "relu[1]"]


def test_result_round_trips_and_tables():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    r = linear_regions(net, torch.randn(2, 2), end=torch.randn(2, 2), label="toy")
    back = RegionsResult.from_json(r.to_json())
    assert back.counts == r.counts and torch.equal(back.breakpoints, r.breakpoints)
    assert back.patterns == r.patterns and torch.equal(back.slopes, r.slopes)
    assert r.to_csv().splitlines()[0] == "label,segment,pieces,breakpoints,jumps,length,density"
    assert sp.linear_regions is linear_regions


def test_the_model_is_left_as_it_was():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    state = copy.deepcopy(net.state_dict())
    linear_regions(net, torch.randn(2, 2), end=torch.randn(2, 2), batchnorm="eval")
    assert net.training and net[0].weight.dtype == torch.float32
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert not net[0]._forward_hooks


@pytest.mark.parametrize("layer", [nn.Tanh(), nn.GELU(), nn.Softmax(dim=1), nn.LayerNorm(4)],
                         ids=lambda m: type(m).__name__)
def test_layers_that_are_not_piecewise_linear_are_refused_by_name(layer):
    net = nn.Sequential(nn.Linear(2, 4), layer, nn.Linear(4, 1))
    with pytest.raises(ValueError, match=rf"'1' \({type(layer).__name__}\) is not piecewise "
                                         r"linear.*ReLU.*MaxPool2d"):
        linear_regions(net, torch.zeros(1, 2), end=torch.ones(1, 2))


def test_functions_that_are_not_piecewise_linear_are_refused_by_name():
    class Smooth(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(x)

    with pytest.raises(ValueError, match="calls tanh, which is not piecewise linear"):
        linear_regions(Smooth(), torch.zeros(1, 2), end=torch.ones(1, 2))


def test_a_hidden_nonlinearity_is_caught_by_the_affine_check():
    class Square(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(x) * x

    with pytest.raises(NotAffineError, match="not affine on segment 0"):
        linear_regions(Square(), torch.zeros(1, 2), end=torch.ones(1, 2))


def test_bad_inputs_get_clear_errors():
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="segment 1 has zero length"):
        linear_regions(net, x, end=torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"end must have shape \(2, 2\)"):
        linear_regions(net, x, end=torch.ones(3, 2))
    with pytest.raises(ValueError, match="x holds NaN or Inf"):
        linear_regions(net, torch.full((1, 2), float("nan")), end=torch.ones(1, 2))
    with pytest.raises(ValueError, match="tol must be in"):
        linear_regions(net, x, end=torch.ones(2, 2), tol=0.1)
    bn = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU())
    with pytest.raises(ValueError, match=r"BatchNorm in train mode.*model.eval\(\)"):
        linear_regions(bn, x, end=torch.ones(2, 2))
    drop = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.ReLU())
    with pytest.raises(ValueError, match="Dropout in train mode"):
        linear_regions(drop, x, end=torch.ones(2, 2))
    assert linear_regions(drop.eval(), x, end=torch.ones(2, 2)).counts


def test_nan_inside_the_model_is_reported():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"NaN/Inf in the input of relu"):
        linear_regions(net, torch.ones(1, 2), end=-torch.ones(1, 2))


class _SignWeights(nn.Linear):
    """Weights quantized inside the forward (as quantized layers do)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, torch.sign(self.weight).clamp(-1, 1), self.bias)


def test_weights_quantized_in_the_forward_are_not_units():
    # out_features = 2 = rows x pieces of the first forward: shaped like the input batch
    torch.manual_seed(0)
    net = nn.Sequential(_SignWeights(3, 2), nn.ReLU(), _SignWeights(2, 2), nn.ReLU(),
                        nn.Linear(2, 1))
    plain = copy.deepcopy(net)
    plain[0].__class__ = plain[2].__class__ = nn.Linear
    with torch.no_grad():
        for i in (0, 2):
            plain[i].weight.copy_(torch.sign(net[i].weight))
    x, end = torch.randn(1, 3), torch.randn(1, 3)
    r = linear_regions(net, x, end=end)
    assert r.stages == ["relu[2]", "relu[2]"]
    assert r.counts == linear_regions(plain, x, end=end).counts
