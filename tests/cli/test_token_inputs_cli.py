"""``--tokens``, ``--attention-mask`` and ``--channel-dim`` for ``signalprop spp`` and
``signalprop report``: token models from a ``module:function`` factory."""

import json

import pytest

from signalprop.cli import main
from signalprop.report import ReportResult

FACTORY = '''
import torch.nn as nn


class TokenEncoder(nn.Module):
    def __init__(self, vocab=50, width=16, norm_first=True):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 2, 32, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)

    def forward(self, input_ids, attention_mask=None):
        pad = None if attention_mask is None else attention_mask == 0
        return self.encoder(self.embed(input_ids), src_key_padding_mask=pad)


def encoder(**kwargs):
    return TokenEncoder(**kwargs)
'''


@pytest.fixture
def factory(tmp_path, monkeypatch):
    (tmp_path / "tokmodels.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)  # module:function imports from the current directory
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tokmodels:encoder"


def test_spp_on_token_ids_infers_the_channel_axis(factory, tmp_path, capsys):
    out = tmp_path / "spp"
    assert main(["spp", factory, "--tokens", "50,8", "--mode", "eval", "--no-progress",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "channel axis -1 (inferred" in text
    rows = json.loads((out / "spp.json").read_text())
    assert rows[0]["channel_dim"] == -1 and rows[0]["input_shape"] == [8, 8]
    assert [r["name"] for r in rows[0]["records"]] == ["encoder.layers.0", "encoder.layers.1",
                                                       "encoder.layers.2"]
    assert rows[0]["skips"] == {f"encoder.layers.{i}": "identity" for i in range(3)}


def test_report_with_an_attention_mask_and_a_given_channel_axis(factory, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", factory, "--tokens", "50,8", "--attention-mask", "padded",
                 "--channel-dim", "-1", "--batch-size", "4", "--mode", "eval",
                 "--no-progress", "--out", str(out)]) == 0
    assert f"wrote {out / 'report.html'}" in capsys.readouterr().out
    saved = ReportResult.load(out / "report.json")
    s = saved.before.summary
    assert s["channel_dim"] == -1 and s["channel_dim_reason"] == "given"
    assert s["input"] == "input_ids 4x8 int64, attention_mask 4x8 int64"
    assert "Jacobian spectrum not measured: the input holds no floating-point" in \
        " ".join(saved.before.notes)


@pytest.mark.parametrize("args,message", [
    (["--tokens", "50"], "expected VOCAB,SEQ_LEN"),
    (["--tokens", "0,8"], "expected VOCAB,SEQ_LEN"),
    (["--tokens", "50,8", "--input-shape", "8,16"], "give --tokens or --input-shape"),
    (["--input-shape", "8,16", "--attention-mask", "ones"], "--attention-mask needs --tokens"),
    (["--tokens", "50,8", "--channel-dim", "last"], "'auto'"),
])
def test_token_option_errors_are_one_line(factory, tmp_path, capsys, args, message):
    try:
        code = main(["spp", factory, *args, "--no-progress", "--out", str(tmp_path / "e")])
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
