"""plot.gradient_spp and plot.confusion: files written, overlays, input validation."""

import math

import matplotlib.image as mpimg
import pytest

from signalprop import plot
from signalprop.results import ConfusionResult, GradBlockStats, GradSPPResult, chi_prediction


def grad(label, decay=0.5, bad=None):
    return GradSPPResult(label, [GradBlockStats(f"b{i}", i, 0.0,
                                                math.nan if i == bad else decay ** (9 - i), 1.0, 4,
                                                3 if i == bad else 0) for i in range(10)])


def conf(label, shift=0.0):
    edges = [-1 + 0.1 * i for i in range(21)]
    counts = [max(0, 10 - abs(i - 10 - int(10 * shift))) for i in range(20)]
    return ConfusionResult(label, 8, 28, 0.3, -0.4 + shift, shift, 0.2, {0.5: shift}, 1.0, 0,
                           edges, counts)


def test_gradient_spp_plot(tmp_path):
    a, b = grad("a"), grad("b", decay=0.9, bad=2)
    out = plot.gradient_spp([a, b], tmp_path / "g.png", predicted=[chi_prediction(a, 2.0), None])
    img = mpimg.imread(out)
    assert img.shape[1] > 3 * img.shape[0] / 2  # three panels side by side
    assert plot.gradient_spp(a, tmp_path / "g.svg", predicted={"a": chi_prediction(a, 2.0)}).exists()
    with pytest.raises(ValueError, match="predicted has 1 entries for 2 results"):
        plot.gradient_spp([a, b], tmp_path / "x.png", predicted=[a])
    with pytest.raises(ValueError, match="non-empty sequence"):
        plot.gradient_spp([], tmp_path / "x.png")


def test_confusion_plot(tmp_path):
    out = plot.confusion([conf("shallow"), conf("deep", -0.3)], tmp_path / "c.png", title="t")
    assert out.stat().st_size > 5000
    assert plot.confusion(conf("one"), tmp_path / "c.pdf", smooth_bins=0).exists()
    with pytest.raises(ValueError, match="non-empty sequence"):
        plot.confusion([grad("a")], tmp_path / "x.png")
