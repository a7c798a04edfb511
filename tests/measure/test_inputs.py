"""Inputs a measurement cannot measure are refused by name before anything runs: NaN/Inf in
x or y, an empty batch, a 1-D floating input without a batch axis; a batch of one whose
block outputs have one value per channel is measured with a warning (variance 0 by
construction). On main, NaN in x read as "batch NOT independent", an empty batch gave
spp NaN statistics with nonfinite=0, and a 1-D input was accepted."""

import math

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import NonFiniteError

CE = nn.CrossEntropyLoss()


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def with_nan(b=4):
    x = torch.randn(b, 4)
    x[1, 2] = math.nan
    return x


def y_of(b):
    return torch.randint(0, 3, (b,))


ALL = {
    "spp": lambda m, x, y: sp.spp(m, x),
    "gradient_spp": lambda m, x, y: sp.gradient_spp(m, x, y, loss_fn=CE),
    "gradient_gram": lambda m, x, y: sp.gradient_gram(m, x, y, loss_fn=CE),
    "gradient_confusion": lambda m, x, y: sp.gradient_confusion(m, x, y, loss_fn=CE),
    "jacobian_spectrum": lambda m, x, y: sp.jacobian_spectrum(m, x, k=1),
    "hessian_extremes": lambda m, x, y: sp.hessian_extremes(m, x, y, loss_fn=CE, k=1),
    "batch_independence": lambda m, x, y: sp.batch_independence(m, x),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_nan_in_x_is_named(name):
    with pytest.raises(NonFiniteError, match=r"x holds 1 NaN/Inf value\(s\) of 16 \(first at "
                                             r"index \(1, 2\)\)"):
        ALL[name](mlp(), with_nan(), y_of(4))


def test_batch_independence_on_nan_input_is_no_independence_verdict():
    # main: independent == False and first_leak named, then "critical init" in the report
    x = with_nan(6)
    x[4, 0] = math.inf
    with pytest.raises(NonFiniteError, match=r"x holds 2 NaN/Inf value\(s\)"):
        sp.batch_independence(mlp(), x)


def test_nan_in_a_dict_input_or_in_targets_is_named():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, a, b):
            return self.lin(a + b)

    x = {"a": torch.randn(4, 4), "b": with_nan()}
    with pytest.raises(NonFiniteError, match=r"x \(tensor 1\) holds 1 NaN/Inf"):
        sp.spp(Two(), x)
    y = torch.randn(4, 3)
    y[0, 0] = math.inf
    with pytest.raises(NonFiniteError, match=r"y holds 1 NaN/Inf"):
        sp.hessian_extremes(mlp(), torch.randn(4, 4), y, loss_fn=nn.MSELoss())


@pytest.mark.parametrize("name", sorted(ALL))
def test_empty_batch_is_refused(name):
    with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 4\)\)"):
        ALL[name](mlp(), torch.randn(0, 4), y_of(0))


@pytest.mark.parametrize("name", sorted(ALL))
def test_one_dimensional_float_input_is_refused_with_the_shape_it_needs(name):
    with pytest.raises(ValueError, match=r"x has shape \(4,\), with no batch axis: .*\(N, \.\.\.\)"
                                         r".*x.unsqueeze\(0\) for one example of 4 features"):
        ALL[name](mlp(), torch.randn(4), y_of(4))


def test_one_dimensional_token_ids_are_a_batch():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    ids = torch.tensor([1, 2, 3, 4])  # (N,): one id per example
    res = sp.spp(model, ids, blocks=nn.Linear)
    assert res.records[0].avg_var > 0
    g = sp.gradient_gram(model, ids, y_of(4), loss_fn=CE)
    assert g.matrix.shape == (4, 4)


def test_batch_of_one_warns_where_a_variance_is_zero_by_construction():
    model = mlp()
    with pytest.warns(UserWarning, match=r"spp: x has batch size 1 and 2 block\(s\) \('0', "
                                         r"'2'\) have one value per channel"):
        res = sp.spp(model, torch.randn(1, 4), blocks=nn.Linear)
    assert [r.avg_var for r in res.records] == [0.0, 0.0]
    with pytest.warns(UserWarning, match=r"gradient_spp: x has batch size 1"):
        sp.gradient_spp(model, torch.randn(1, 4), blocks=nn.Linear)
    # (1, C, H, W) and (1, T, C) outputs have several values per channel: no warning
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert sp.spp(conv, torch.randn(1, 3, 6, 6)).records[0].avg_var > 0
    seq = nn.Sequential(nn.Linear(4, 4))
    assert sp.spp(seq, torch.randn(1, 5, 4), channel_dim=-1).records[0].avg_var > 0
