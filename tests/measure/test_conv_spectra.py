"""conv_spectra: every conv call of a model, at the input size a real forward gives it."""


import pytest
import torch
import torch.nn as nn

from signalprop.measure import ForwardError, conv_spectra, conv_spectrum
from signalprop.nn import OrthoConv2d
from signalprop.results import ConvSpectraResult


class Shared(nn.Module):
    """The same circular conv called twice, a strided zero-padded conv, a BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular")
        self.down = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        x = self.conv(torch.relu(self.conv(x)))
        return self.head(self.bn(self.down(x)).mean(dim=(2, 3)))


def test_records_every_call_with_its_input_size():
    model = Shared().train()
    before = model.bn.running_mean.clone()
    res = conv_spectra(model, torch.randn(4, 3, 8, 8))
    assert res.names == ["conv", "conv#2", "down"]
    assert [r.input_shape for r in res.records] == [(3, 8, 8), (3, 8, 8), (3, 8, 8)]
    assert res.records[2].output_shape == (6, 4, 4)
    assert [r.method for r in res.records] == ["fft", "fft", "dense"]
    assert torch.equal(model.bn.running_mean, before)  # buffers left as they were
    for r in res.records:  # each record is conv_spectrum of that layer at that shape
        layer = model.get_submodule(r.name.split("#")[0])
        one = conv_spectrum(layer, r.input_shape)
        assert r.sigma_max == pytest.approx(one.sigma_max, rel=1e-12)
        assert r.sigma_min == pytest.approx(one.sigma_min, rel=1e-9, abs=1e-12)
        assert r.sigma_max_low <= one.sigma_max <= r.sigma_max_high
        assert r.condition == pytest.approx(r.sigma_max / r.sigma_min)


def test_blocks_selects_layers_and_refuses_non_convolutions():
    model = Shared()
    res = conv_spectra(model, torch.randn(2, 3, 8, 8), blocks=["down"], method="bounds", steps=5)
    assert res.names == ["down"] and not res.records[0].exact
    with pytest.raises(ValueError, match="'bn', which is not a convolution"):
        conv_spectra(model, torch.randn(2, 3, 8, 8), blocks=["bn"])
    with pytest.raises(ValueError, match="no convolution"):
        conv_spectra(nn.Linear(3, 3), torch.randn(2, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        conv_spectra(model, torch.randn(2, 3, 8, 8), method="x")


def test_orthoconv_layers_are_included():
    model = nn.Sequential(OrthoConv2d(2, 8, 3, stride=2), nn.ReLU(), nn.Conv1d(1, 1, 1))
    res = conv_spectra(model[:2], torch.randn(1, 2, 8, 8))
    assert res.records[0].sigma_max == pytest.approx(1.0, abs=1e-5)
    assert res.records[0].sigma_min == pytest.approx(1.0, abs=1e-5)


def test_forward_errors_name_the_module():
    with pytest.raises(ForwardError):
        conv_spectra(nn.Sequential(nn.Conv2d(3, 3, 3)), torch.randn(1, 4, 8, 8))


def test_result_round_trips_and_writes_a_table():
    res = conv_spectra(Shared(), torch.randn(2, 3, 8, 8), label="toy")
    back = ConvSpectraResult.from_json(res.to_json())
    assert back.records == res.records and back.label == "toy"
    header = res.to_csv().splitlines()[0]
    assert header.startswith("label,name,index,layer,input_shape")
    assert len(res.to_csv().splitlines()) == 4  # one row per conv call
