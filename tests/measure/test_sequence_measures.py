"""spatial_jacobian against dense autograd Jacobians and exact path sums; length_spp
against spp at each length and an independent count correlation."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop import theory
from signalprop.results import LengthSPPResult, SpatialJacobianResult


def _dense_map(model, x, source, channel_dim=1, direction=None):
    """mean_n sum_c |J t| from the full autograd Jacobian (independent of forward mode)."""
    jac = torch.autograd.functional.jacobian(model, x)  # (*out, *in)
    t = torch.zeros_like(x)
    idx = [slice(None)] * x.dim()
    spatial = [d for d in range(1, x.dim()) if d != channel_dim % x.dim()]
    for d, s in zip(spatial, source):
        idx[d] = s
    t[tuple(idx)] = 1.0 if direction is None else direction
    jt = (jac.flatten(-x.dim()) @ t.flatten()).abs()
    return jt.sum(channel_dim % jt.dim()).mean(0)


def test_map_of_linear_rnn_is_the_autograd_jacobian_and_the_path_sum():
    torch.manual_seed(0)
    rnn = sp.nn.LinearRNN2d(3, "naive").double()
    with torch.no_grad():
        rnn.theta.uniform_(0.3, 0.9)  # positive transitions: no cancellation between channels
        rnn.source.uniform_(0.5, 1)
        rnn.mark.uniform_(0.5, 1)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    r = sp.spatial_jacobian(rnn, x, source=(1, 2))
    assert r.method == "forward-ad" and r.map.shape == (5, 6) and r.source == (1, 2)
    torch.testing.assert_close(r.map, _dense_map(rnn, x, (1, 2)).double())
    corner = sp.spatial_jacobian(rnn, x, source=(0, 0))
    t = {k: v.detach().numpy() for k, v in rnn.transitions().items()}
    want = sum(np.abs(theory.plstm_gain(
        (5, 6), {k: t[k][c] for k in t}, source=tuple(rnn.source[:, c].tolist()),
        mark=tuple(rnn.mark[:, c].tolist()), direct=rnn.direct[c].item())) for c in range(3))
    np.testing.assert_allclose(corner.map.numpy(), want, rtol=1e-12)


def test_channel_mixing_model_channels_last_and_direction():
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 2, 3, padding=1))
    x = torch.randn(1, 2, 7, 7)
    d = torch.tensor([0.5, -2.0])
    r = sp.spatial_jacobian(conv, x, source=(3, 3), direction=d)
    torch.testing.assert_close(r.map.float(), _dense_map(conv, x, (3, 3), direction=d.view(1, 2)))
    assert r.map[3, 0] == 0 and r.map[1, 1] > 0  # two 3x3 convolutions reach 2 cells away

    class Last(nn.Module):  # (N, T, C) sequences
        def forward(self, h):
            return torch.cumsum(h, dim=1) * 0.5

    seq = sp.spatial_jacobian(Last(), torch.randn(2, 6, 3), source=2, channel_dim=-1)
    torch.testing.assert_close(seq.map, torch.tensor([0, 0, 1.5, 1.5, 1.5, 1.5],
                                                     dtype=torch.float64))


def test_operations_without_forward_mode_fall_back_to_two_reverse_passes():
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, h):
            ctx.save_for_backward(h)
            return h * h

        @staticmethod
        def backward(ctx, g):
            (h,) = ctx.saved_tensors
            return 2 * h * g

    class Model(nn.Module):
        def forward(self, h):
            return Square.apply(h)

    x = torch.randn(1, 2, 3, 3)
    r = sp.spatial_jacobian(Model(), x, source=(1, 1))
    assert r.method == "double-vjp"
    assert r.map[1, 1].item() == pytest.approx(float(2 * x[0, :, 1, 1].abs().sum()), rel=1e-6)
    assert float(r.map.sum() - r.map[1, 1]) == 0


def test_batchnorm_in_train_mode_and_bad_inputs_are_refused():
    bn = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    x = torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match="BatchNorm"):
        sp.spatial_jacobian(bn, x, source=(0, 0))
    r = sp.spatial_jacobian(bn, x, source=(0, 0), batchnorm="eval")
    assert bn[1].training and r.map.shape == (3, 3)
    with pytest.raises(ValueError, match="outside"):
        sp.spatial_jacobian(bn, x, source=(3, 0), batchnorm="eval")
    with pytest.raises(ValueError, match="one per spatial axis"):
        sp.spatial_jacobian(bn, x, source=1, batchnorm="eval")
    with pytest.raises(ValueError, match="floating tensor"):
        sp.spatial_jacobian(bn, torch.zeros(4, 2, 3, 3, dtype=torch.long), source=(0, 0))
    with pytest.raises(ValueError, match="direction"):
        sp.spatial_jacobian(bn, x, source=(0, 0), direction=torch.ones(3), batchnorm="eval")


class _Counter(nn.Module):
    """A block whose token outputs have norm ``count + 1`` exactly, then a LayerNorm."""

    def __init__(self):
        super().__init__()
        self.count = _CountBlock()
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        return self.norm(self.count(x))


class _CountBlock(nn.Module):
    def forward(self, x):  # x (N, T) tokens -> (N, T, 4) with norm = count + 1
        same = (x[:, :, None] == x[:, None, :]).sum(-1).float()
        return torch.stack([same + 1, 0 * same, 0 * same, 0 * same], dim=-1)


def test_length_spp_matches_spp_and_correlates_magnitude_with_count():
    model = _Counter()
    inputs = {}

    def make(n):
        inputs[n] = sp.data.count_batch(n, 6, background=False,
                                        generator=torch.Generator().manual_seed(n))
        return inputs[n]

    r = sp.measure.length_spp(model, make, [16, 4], blocks=["count", "norm"], label="toy")
    assert isinstance(r, LengthSPPResult) and r.lengths == [4, 16] and r.names == ["count", "norm"]
    for n in (4, 16):
        ref = sp.spp(model, inputs[n][0], blocks=["count", "norm"], channel_dim=-1)
        mine = [rec for rec in r.records if rec.length == n]
        assert [m.avg_var for m in mine] == [b.avg_var for b in ref.records]
        assert mine[0].rms == pytest.approx(math.sqrt(ref.records[0].avg_sq_mean
                                                      + ref.records[0].avg_var))
        x, y = inputs[n]
        mag = model.count(x).norm(dim=-1).flatten().numpy()
        want = np.corrcoef(mag, y.flatten().numpy())[0, 1]
        assert mine[0].count_corr == pytest.approx(want) == pytest.approx(1.0)
        assert mine[1].count_corr is None  # LayerNorm: every token has the same norm
    back = LengthSPPResult.from_json(r.to_json())
    assert back.records == r.records and "count_corr" in r.to_csv().splitlines()[0]


def test_length_spp_without_counts_and_bad_arguments():
    net = sp.models.transformer(vocab_size=10, d_model=8, normalize="none", norm="none")
    r = sp.measure.length_spp(net, lambda n: torch.randint(0, 10, (4, n)), [2, 8])
    assert all(rec.count_corr is None for rec in r.records)
    assert r.curve("layers.0.attn", "rms")[1][1] > r.curve("layers.0.attn", "rms")[1][0]
    with pytest.raises(ValueError, match="lengths must be"):
        sp.measure.length_spp(net, lambda n: torch.randint(0, 10, (4, n)), [])
    with pytest.raises(ValueError, match="make_input must be a callable"):
        sp.measure.length_spp(net, torch.zeros(2), [2])
    with pytest.raises(ValueError, match="pair"):
        sp.measure.length_spp(net, lambda n: (torch.zeros(2, n).long(), 1, 2), [2])


def test_results_round_trip():
    r = SpatialJacobianResult("toy", torch.rand(3, 4).double(), (0, 1), (1, 1, 3, 4),
                              (1, 1, 3, 4))
    back = SpatialJacobianResult.from_json(r.to_json())
    assert torch.equal(back.map, r.map) and back.source == (0, 1)
    assert "map" not in r.to_csv().splitlines()[0].split(",")
    assert r.profile("sum")[0] == pytest.approx(float(r.map[0, 1]))


def test_random_draws_are_refused_by_the_jacobian_and_switched_off_on_request():
    net = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Dropout(0.5))
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="draws random numbers"):
        sp.spatial_jacobian(net, x, source=(2, 2))
    r = sp.spatial_jacobian(net, x, source=(2, 2), dropout="eval")
    assert net[1].training and r.map[2, 2] > 0
    with pytest.raises(ValueError, match="label must be a string"):
        sp.spatial_jacobian(net, x, source=(2, 2), dropout="eval", label=3)
