"""Length-SPP and spatial-Jacobian figures are drawn from results and written to files."""

import pytest
import torch

import signalprop as sp
from signalprop import theory
from signalprop.results import LengthBlockStats, LengthSPPResult, SpatialJacobianResult


def _measured():
    recs = [LengthBlockStats("attn", 0, n, 0.0, float(n), n**0.5, 0.9) for n in (4, 16, 64)]
    return LengthSPPResult("toy", recs)


def test_length_spp_with_predictions_and_correlation_panel(tmp_path):
    pred = theory.attention_sum([4, 16, 64], "none", value_std=1.0, name="attn")
    fig = sp.plot.length_spp(_measured(), tmp_path / "len.png", predicted=[pred],
                             title="toy")
    assert (tmp_path / "len.png").stat().st_size > 0
    assert len(fig.axes) == 2  # statistic and count correlation
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and list(lines[0].get_xdata()) == [4, 16, 64]
    only = sp.plot.length_spp(pred, stat="avg_var", blocks=["attn"])
    assert len(only.axes) == 1


def test_spatial_jacobian_heat_maps(tmp_path):
    rnn = sp.nn.LinearRNN2d(2, "P", transition=0.6)
    maps = [sp.spatial_jacobian(rnn, torch.zeros(1, 2, 8, 8), source=(0, 0)),
            SpatialJacobianResult("zeros", torch.zeros(8, 8), (4, 4), (1, 1, 8, 8),
                                  (1, 1, 8, 8))]
    fig = sp.plot.spatial_jacobian(maps, tmp_path / "jac.png", titles=["P", "none"])
    assert (tmp_path / "jac.png").stat().st_size > 0
    assert [ax.get_title() for ax in fig.axes[:2]] == ["P", "none"]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="stat must be one of"):
        sp.plot.length_spp(_measured(), stat="res_var")
    with pytest.raises(ValueError, match="LengthSPPResult"):
        sp.plot.length_spp([1, 2])
    with pytest.raises(ValueError, match="2-D maps"):
        sp.plot.spatial_jacobian(SpatialJacobianResult("a", torch.zeros(5), (0,), (1, 1, 5),
                                                       (1, 1, 5)))
