"""Diagnoses from what was measured about the model, not from how it is wrapped: the channel
axis of (N, T, C) models, which blocks really add a skip, where a gradient change happens,
batches of one, and fix lines only where the fix applies (regressions of issue 14)."""

import warnings

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.report import diagnose, measure_all


def _stats(y, cdim):
    y = y.detach().double().movedim(cdim, -1).reshape(-1, y.shape[cdim])
    mean = y.mean(0)
    return float(mean.square().mean()), float((y - mean).square().mean(0).mean())


def test_tokens_are_not_measured_as_channels():
    # a pre-LN encoder on (N, T, C): the report used to take axis 1 (tokens) as channels
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True,
                                       norm_first=True)
    model = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False).eval()
    x = torch.randn(6, 10, 32)
    m = measure_all(model, x, "pre-LN")
    assert m.summary["channel_dim"] == -1 and "last axis" in m.summary["channel_dim_reason"]
    with torch.no_grad():
        out = model.layers[-1](model.layers[2](model.layers[1](model.layers[0](x))))
    sq, var = _stats(out, -1)
    last = m.spp.records[-1]
    assert last.avg_sq_mean == pytest.approx(sq, rel=1e-5)
    assert last.avg_var == pytest.approx(var, rel=1e-5)
    assert m.grad is not None and m.grad.channel_dim == -1
    given = measure_all(model, x, "pre-LN", channel_dim=1)
    assert given.summary["channel_dim_reason"] == "given"
    assert given.spp.records[-1].avg_var == pytest.approx(_stats(out, 1)[1], rel=1e-5)


class Layer(nn.Module):
    """A custom layer module: Linear + ReLU, no skip (composite, shape-preserving)."""

    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


def test_a_plain_mlp_of_custom_layers_is_not_called_residual():
    torch.manual_seed(0)
    model = nn.Sequential(*[Layer(32) for _ in range(8)])
    with torch.no_grad():
        for m in model:
            m.fc.weight.mul_(3.0)  # sigma_w^2 = 3: variance grows x1.5 per layer
    m = measure_all(model, torch.randn(16, 32), "custom mlp")
    assert m.spp.skips == {} and all(r.res_var is None for r in m.spp.records)
    growth = next(d for d in m.diagnoses if d.kind == "variance_growth")
    assert "each layer multiplies the variance" in growth.message
    assert "residual" not in growth.message
    assert growth.fix_code == 'sp.nn.init.critical_(model, "relu")'
    assert m.summary["skips"] == "none of the 8 blocks adds a skip connection"


def test_convnext_vanishing_gradients_are_put_down_to_where_they_happen():
    # the gradient shrinks at the downsampling layers between stages; ConvNeXt's residual
    # branches start at layer scale 1e-6 and cannot multiply it (the old message said so)
    pytest.importorskip("transformers")
    from foreign.zoo import convnext

    torch.manual_seed(0)
    m = measure_all(convnext().eval(), torch.randn(4, 3, 16, 16), "convnext")
    d = next(d for d in m.diagnoses if d.kind == "vanishing_gradients")
    assert "multiply the gradient" not in d.message
    assert ("between 'encoder.stages.0.layers.1' and 'encoder.stages.1.layers.0' (block "
            "outputs (8, 8, 8) -> (16, 4, 4))") in d.message
    assert "residual branches are nearly silent" in d.message


def test_a_batch_of_one_gives_no_mean_shift():
    # (1, C) outputs have channel variance 0 by construction: not a mean shift
    torch.manual_seed(0)
    model = sp.models.mlp(depth=6, width=32, activation="relu")
    with pytest.warns(UserWarning, match="batch size 1"):
        res = sp.spp(model, torch.randn(1, 32))
    assert all(r.avg_var == 0 and r.avg_sq_mean > 0 for r in res.records)
    with pytest.warns(UserWarning, match="batch of one example"):
        found = diagnose(res)
    assert "mean_shift" not in {d.kind for d in found}


class TokenLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8, num_layers=2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, ids):
        return self.head(self.lstm(self.emb(ids))[0][:, -1])


def test_no_fix_line_that_does_not_apply():
    # to_normfree changes no module of an LSTM: it used to be the suggested fix anyway
    torch.manual_seed(0)
    model = TokenLSTM()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = measure_all(model, torch.randint(0, 20, (4, 5)), "lstm")
    assert m.summary["fixes"]["normfree"] == "to_normfree changes no module of this model"
    assert m.diagnoses, "the tiny LSTM's gradients vanish at initialization"
    for d in m.diagnoses:
        assert d.fix_code == "" and "no automatic fix applies" in d.message.lower()
    fixed, what = sp.report.apply_fix(model, m)
    assert fixed is None and "changes no module" in what
