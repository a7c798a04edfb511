"""round_to_grid_ (in place, in cache-sized pieces on CPU) against round_to_grid bit for
bit, and QuantizedTraining's SR / R steps on layers larger than one piece."""

import pytest
import torch
import torch.nn as nn

from signalprop.nn import QuantLinear
from signalprop.nn.functional import round_to_grid, round_to_grid_
from signalprop.nn.quantized import _rounding
from signalprop.optim import QuantizedTraining, _fused_step


def _bits(t):
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", ["binary", "ternary", 3])
@pytest.mark.parametrize("stochastic", [True, False])
@pytest.mark.parametrize("shape, per_row", [((70, 37), False), ((3, 70_000), False),
                                            ((300, 64, 3, 3), True), ((2, 200_000), True)])
def test_in_place_rounding_is_round_to_grid_bit_for_bit(dtype, levels, stochastic, shape,
                                                        per_row):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=gen, dtype=dtype) * 0.7
    x.view(-1)[:5] = torch.tensor([0.0, -0.0, 0.31, -0.31, 1.0])  # zeros and grid points
    if per_row:
        unit = torch.rand(shape[0], *([1] * (len(shape) - 1)), generator=gen) + 0.1
    else:
        unit = torch.tensor(0.31)
    want = round_to_grid(x, unit, levels, stochastic=stochastic,
                         generator=torch.Generator().manual_seed(5))
    y = x.clone()
    got = round_to_grid_(y, unit, levels, stochastic=stochastic,
                         generator=torch.Generator().manual_seed(5))
    assert got is y
    assert torch.equal(_bits(got), _bits(want))


def test_pieces_draw_what_the_whole_tensor_draws():
    """The CPU generator fills element by element: drawing piece by piece gives the same
    stream (in_place rounding relies on it; a torch change would show here)."""
    n = 2 * _rounding._PIECE + 12345
    whole = torch.empty(n).uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    pieces = [torch.empty(p.numel()).uniform_(-1.0, 1.0, generator=gen)
              for p in torch.empty(n).split(_rounding._PIECE)]
    assert torch.equal(torch.cat(pieces), whole)


@pytest.mark.parametrize("mode, levels", [("sr", "binary"), ("sr", 3), ("r", "ternary")])
def test_training_step_on_a_layer_larger_than_one_piece(mode, levels, monkeypatch):
    # the general path (SGD's step, then round_to_grid_ piece by piece with torch's
    # generator); SGD's one-pass path is tested in tests/optim/test_fused_step.py
    monkeypatch.setattr(_fused_step, "_kernel_matches", False)
    torch.manual_seed(0)
    net = nn.Sequential(QuantLinear(400, 400, weight_levels=levels))  # 160,000 weights
    assert net[0].weight.numel() > _rounding._PIECE
    opt = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.05), net, mode, snap=True,
                            seed=7)
    net(torch.randn(8, 400)).square().mean().backward()
    w, g = net[0].weight.detach().clone(), net[0].weight.grad.clone()
    opt.step()
    expected = round_to_grid(w - 0.05 * g, net[0].grid_unit, levels, stochastic=mode == "sr",
                             generator=torch.Generator().manual_seed(7))
    assert torch.equal(net[0].weight.detach(), expected)
