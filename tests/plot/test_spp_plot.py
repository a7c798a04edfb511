"""plot.spp draws measured and predicted results, marks non-finite blocks, validates input."""

import math

import matplotlib.image as mpimg
import pytest

from signalprop import plot
from signalprop.results import BlockStats, SPPResult


def _res(label, scale=1.0, kind="measured", bad_from=None):
    recs = []
    for i in range(12):
        bad = bad_from is not None and i >= bad_from
        recs.append(BlockStats(f"b{i}", i, 0.01 * i, math.nan if bad else scale * (1 + 0.04 * i),
                               1.0 if i else None, 5 if bad else 0))
    return SPPResult(label, recs, kind=kind, meta={"transitions": [1, 6]})


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_spp_plot_with_predictions_and_nonfinite(tmp_path, suffix):
    measured = [_res("nf"), _res("none", scale=1e4, bad_from=8)]
    predicted = [_res("nf", kind="predicted"), None]
    out = plot.spp(measured, tmp_path / f"spp.{suffix}", predicted=predicted, title="t")
    assert out.exists() and out.stat().st_size > 5000
    if suffix == "png":
        img = mpimg.imread(out)
        assert img.shape[1] > 3 * img.shape[0] / 2  # three panels side by side


def test_prediction_mapping_and_single_result(tmp_path):
    out = plot.spp(_res("a"), tmp_path / "a.png", predicted={"a": _res("a", kind="predicted")})
    assert out.exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="predicted has 1 entries for 2 results"):
        plot.spp([_res("a"), _res("b")], tmp_path / "x.png", predicted=[_res("a")])
    with pytest.raises(ValueError, match="non-empty sequence"):
        plot.spp([], tmp_path / "x.png")


def test_exploding_result_gets_its_own_row():
    from signalprop.plot.spp import _rows_by_scale

    rows = _rows_by_scale([_res("bn", 30.0), _res("none", 1e50), _res("nf", 1.0)])
    assert rows == [[0, 2], [1]]
    assert _rows_by_scale([_res("a"), _res("b", 5.0)]) == [[0, 1]]
