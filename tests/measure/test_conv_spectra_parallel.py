"""conv_spectra's speed-ups change no number: layers measured on parallel workers give the
serial results bit for bit; the transposed-convolution adjoint is the transpose of the
dense operator; the finiteness check still catches NaN/Inf (and tolerates a sum that
overflows)."""

import pytest
import torch
import torch.nn as nn

from signalprop.measure import NonFiniteError, conv_spectra, conv_spectrum
from signalprop.measure.spectra._conv_layer import Products, conv_operator, dense_matrix


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, padding_mode="circular"), nn.Conv2d(16, 16, 3))


def _run(model: nn.Module, x: torch.Tensor, threads: int):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return conv_spectra(model, x, steps=6)
    finally:
        torch.set_num_threads(old)


def test_parallel_workers_give_the_serial_results():
    torch.manual_seed(0)
    model, x = _net(), torch.randn(2, 3, 12, 12)
    serial, parallel = _run(model, x, 1), _run(model, x, 2)
    assert [r.method for r in serial.records] == ["dense", "pointwise", "dense", "fft",
                                                  "dense"]
    assert parallel.records == serial.records


def test_a_failing_layer_is_named_in_parallel_runs_too():
    class Doubled(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    model = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), Doubled(2, 2, 3, padding=1))
    with pytest.raises(ValueError, match="layer '1': Doubled's forward is not the conv"):
        _run(model, torch.randn(1, 2, 6, 6), 2)


@pytest.mark.parametrize("conv,shape", [
    (nn.Conv2d(3, 5, 3, padding=1), (3, 6, 6)), (nn.Conv2d(3, 4, 3, stride=2), (3, 8, 8)),
    (nn.Conv1d(4, 6, 5, stride=3, padding=2, dilation=2, groups=2), (4, 13)),
    (nn.Conv3d(2, 2, 3, stride=2, padding=1), (2, 5, 5, 5)),
    (nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), (4, 3, 3)),
    (nn.Conv2d(2, 3, (3, 2), padding="same"), (2, 5, 4)),  # asymmetric: autograd
    (nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 5, 5))])
def test_adjoint_is_the_transpose_of_the_dense_operator(conv, shape):
    op = conv_operator(conv, shape)
    u = torch.randn(1, op.rows, dtype=torch.float64)
    assert torch.allclose(Products(op).adjoint(u), u @ dense_matrix(op), atol=1e-13)


def test_finiteness_check():
    conv = nn.Conv2d(2, 2, 3, padding=1, bias=False)
    for bad in (float("inf"), float("nan")):
        with torch.no_grad():
            conv.weight.fill_(0.1)
            conv.weight[1, 0, 2, 2] = bad
        with pytest.raises(NonFiniteError, match="NaN/Inf"):
            conv_spectrum(conv, (2, 4, 4))
    big = nn.Conv2d(2, 2, 1, bias=False).double()
    with torch.no_grad():
        big.weight.fill_(1e308)  # finite entries whose sum overflows
    assert conv_operator(big, (2, 3, 3)).weight.max() == 1e308  # not refused


def test_a_module_called_again_on_the_same_size_is_measured_once(monkeypatch):
    from signalprop.measure.spectra import _conv_spectra

    seen = []

    def counting(mod, shape, **kw):
        seen.append(tuple(shape))
        return conv_spectrum(mod, shape, **kw)

    monkeypatch.setattr(_conv_spectra, "conv_spectrum", counting)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), conv, nn.AvgPool2d(2), conv)
    res = conv_spectra(model, torch.randn(1, 3, 8, 8))
    assert res.names == ["0", "0#2", "0#3"] and seen == [(3, 8, 8), (3, 4, 4)]
    assert res.records[1].sigma_max == res.records[0].sigma_max
    assert res.records[2].input_shape == (3, 4, 4)
