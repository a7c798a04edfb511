"""The report's convolution-spectra panel: present for conv models, absent otherwise."""

import torch

import signalprop as sp
from signalprop.report import ReportResult


def test_conv_models_get_the_panel(reports):
    r = reports["bn"]
    cs = r.before.conv_spectra
    assert cs is not None and cs.records and cs.records[0].input_shape == (3, 16, 16)
    page = r.path.read_text()
    assert 'id="conv-spectra"' in page and "conv_spectra.png" in {p.name for p in r.images}
    assert cs.records[0].name in page
    back = ReportResult.load(r.path.parent / "report.json")
    assert back.before.conv_spectra.records == cs.records


def test_models_without_convolutions_have_no_panel(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    r = sp.report.build_report(net, torch.randn(4, 8), tmp_path)
    assert r.before.conv_spectra is None and 'id="conv-spectra"' not in r.path.read_text()
