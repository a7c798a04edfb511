"""plot.conv_spectra: files written, bounds layers and sigma_min = 0 drawn, bad input."""

import math

import matplotlib.image as mpimg
import pytest

from signalprop import plot
from signalprop.results import ConvLayerSpectrum, ConvSpectraResult


def result(label, zero_at=None):
    recs = []
    for i in range(6):
        exact = i % 2 == 0
        smin = 0.0 if i == zero_at else 0.3 + 0.1 * i
        recs.append(ConvLayerSpectrum(f"c{i}", i, "Conv2d", (4, 8, 8), (4, 8, 8),
                                      "fft" if exact else "bounds", exact, 256, 1.0 + i, smin,
                                      1.0 + i if exact else 0.9 + i, 1.0 + i if exact else 1.4 + i,
                                      smin if exact else 0.0, smin))
    return ConvSpectraResult(label, recs)


def test_conv_spectra_plot(tmp_path):
    out = plot.conv_spectra([result("a"), result("b", zero_at=3)], tmp_path / "c.png", title="t")
    img = mpimg.imread(out)
    assert img.shape[1] > 2 * img.shape[0]  # two panels side by side
    assert not math.isfinite(result("b", zero_at=3).records[3].condition)
    assert plot.conv_spectra(result("one"), tmp_path / "c.svg").exists()
    with pytest.raises(ValueError, match="ConvSpectraResult with records"):
        plot.conv_spectra([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="ConvSpectraResult with records"):
        plot.conv_spectra(ConvSpectraResult("empty", []), tmp_path / "x.png")
