"""Random draws in the forward (dropout in train mode and its relatives), one policy for
every measurement: ``dropout="auto"`` refuses them where the result describes an operator
(Jacobian, Hessian, Gram, confusion) and keeps them, flagged, where it is a statistic of
one training-mode pass (spp, gradient_spp); ``"eval"`` switches them off for the call;
``"error"`` refuses them everywhere. The refusal names the module that drew."""

import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop as sp

CE = nn.CrossEntropyLoss()


def dropout_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)).double()


def data(b=6):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (b,),
                                                                              generator=g)


OPERATORS = {
    "jacobian_spectrum": lambda m, x, y, **kw: sp.jacobian_spectrum(m, x, k=2, **kw),
    "hessian_extremes": lambda m, x, y, **kw: sp.hessian_extremes(m, x, y, loss_fn=CE, k=2,
                                                                  **kw),
    "gradient_gram": lambda m, x, y, **kw: sp.gradient_gram(m, x, y, loss_fn=CE, **kw),
    "gradient_confusion": lambda m, x, y, **kw: sp.gradient_confusion(m, x, y, loss_fn=CE, **kw),
}
ONE_PASS = {
    "spp": lambda m, x, y, **kw: sp.spp(m, x, blocks=nn.Linear, **kw),
    "gradient_spp": lambda m, x, y, **kw: sp.gradient_spp(m, x, y, loss_fn=CE, blocks=nn.Linear,
                                                          **kw),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_measurements_refuse_train_mode_dropout_naming_the_module(name):
    # on main, hessian_extremes returned a different Hessian at every call, each with
    # residuals ~1e-14, and gradient_gram a different Gram without a word
    model, (x, y) = dropout_mlp(), data()
    with pytest.raises(ValueError, match=r"module '2' \(Dropout\) draws random numbers.*"
                                         r"Call model.eval\(\), or pass dropout='eval'"):
        OPERATORS[name](model, x, y)
    with pytest.raises(ValueError, match=r"module '2' \(Dropout\) draws random numbers"):
        OPERATORS[name](model, x, y, dropout="error")


@pytest.mark.parametrize("name", sorted(OPERATORS) + sorted(ONE_PASS))
def test_dropout_eval_equals_the_eval_model_and_restores_the_modes(name):
    f = {**OPERATORS, **ONE_PASS}[name]
    model, (x, y) = dropout_mlp(), data()
    got = f(model, x, y, dropout="eval")
    assert all(m.training for m in model.modules())  # modes restored
    ref = f(model.eval(), x, y)
    got.meta.pop("mode", None), ref.meta.pop("mode", None)
    assert got.to_json() == ref.to_json().replace('"dropout": "auto"', '"dropout": "eval"')


@pytest.mark.parametrize("name", sorted(ONE_PASS))
def test_one_pass_measurements_keep_the_draws_and_say_so(name):
    model, (x, y) = dropout_mlp(), data()
    res = ONE_PASS[name](model, x, y)
    assert res.meta["random_draws"] is True and res.meta["mode"] == "train"
    assert ONE_PASS[name](model.eval(), x, y).meta["random_draws"] is False
    with pytest.raises(ValueError, match=r"module '2' \(Dropout\) draws random numbers"):
        ONE_PASS[name](model.train(), x, y, dropout="error")


class FunctionalDropout(nn.Module):
    """Dropout as HuggingFace writes it: F.dropout gated by self.training, no module."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return F.dropout(self.lin(x), p=0.1, training=self.training)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole branch of an example with torch.rand."""

    def forward(self, x):
        if not self.training:
            return x
        keep = (torch.rand(x.shape[0], 1, dtype=x.dtype) > 0.2).to(x.dtype)
        return x * keep / 0.8


class LayerDrop(nn.Module):
    """LayerDrop with Python's random module (as some HuggingFace models do)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return x if self.training and random.random() < 0.5 else self.lin(x)


@pytest.mark.parametrize("inner,name", [
    (FunctionalDropout(), r"'0' \(FunctionalDropout\)"),
    (nn.Sequential(nn.Linear(4, 4), DropPath()), r"'0.1' \(DropPath\)"),
    (LayerDrop(), r"'0' \(LayerDrop\)"),
    (nn.RReLU(), r"'0' \(RReLU\)"),
])
def test_any_random_draw_is_found_and_named(inner, name):
    model = nn.Sequential(inner, nn.Linear(4, 3)).double()
    x, y = data()
    with pytest.raises(ValueError, match=name + " draws random numbers"):
        sp.hessian_extremes(model, x, y, loss_fn=CE, k=1)
    h = sp.hessian_extremes(model, x, y, loss_fn=CE, k=1, dropout="eval")
    assert h.largest == sp.hessian_extremes(model.eval(), x, y, loss_fn=CE, k=1).largest


def test_zero_probability_dropout_draws_nothing_and_is_accepted():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.0), nn.Linear(4, 3)).double()
    x, y = data()
    assert sp.hessian_extremes(model, x, y, loss_fn=CE, k=1).meta["mode"] == "train"


def test_eval_keeps_batchnorm_in_train_mode_for_the_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Dropout(0.3),
                          nn.Linear(6, 3)).double()
    x, y = data(8)
    h = sp.hessian_extremes(model, x, y, loss_fn=CE, k=1, dropout="eval")
    model[3].eval()  # only the dropout off: BatchNorm keeps its batch statistics
    ref = sp.hessian_extremes(model, x, y, loss_fn=CE, k=1)
    assert h.largest == ref.largest and h.smallest == ref.smallest


def test_huggingface_bert_attention_and_hidden_dropout():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=16,
                                  max_position_embeddings=16, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.1, attn_implementation="sdpa")
    torch.manual_seed(0)
    bert = transformers.BertModel(cfg, add_pooling_layer=False)  # built in train mode
    ids = torch.randint(0, 30, (3, 5))

    def loss(out):
        return out.last_hidden_state.square().mean()

    # attention dropout is dropout_p of scaled_dot_product_attention: no Dropout module ran
    with pytest.raises(ValueError, match=r"'encoder.layer.0.attention.self' "
                                         r"\(BertSelfAttention\) draws random numbers"):
        sp.hessian_extremes(bert, {"input_ids": ids}, loss_fn=loss, k=1)
    res = sp.spp(bert, {"input_ids": ids}, channel_dim=-1)
    assert res.meta["random_draws"] is True
    assert sp.spp(bert.eval(), {"input_ids": ids}, channel_dim=-1).meta["random_draws"] is False


def test_a_one_off_draw_such_as_lazy_initialization_is_not_refused():
    model = nn.Sequential(nn.LazyLinear(4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, _ = data()
    res = sp.spp(model, x, dropout="error")  # the forward initializes the LazyLinear
    assert res.meta["random_draws"] is False
    assert sp.spp(model, x, dropout="error").records == res.records
