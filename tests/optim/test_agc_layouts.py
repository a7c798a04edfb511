"""AGC's unit axis per layer type, against clipping written out unit by unit: HuggingFace's
Conv1D (weight (in, out): units are columns), RNNs, bilinear layers, weights of layers AGC
cannot know (refused by name, or clipped as the user says), bare parameter lists."""

import pytest
import torch
import torch.nn as nn

from signalprop.optim import AGC, layouts_of

transformers = pytest.importorskip("transformers")
from transformers.pytorch_utils import Conv1D  # noqa: E402

LAM, EPS = 0.02, 1e-3


def _clip_units(w, g, units):
    """AGC by the paper's formula over the given index tuples, in float64."""
    out, w = g.double().clone(), w.double()
    for idx in units:
        limit = LAM * max(w[idx].norm().item(), EPS)
        gn = out[idx].norm().item()
        if gn > limit:
            out[idx] = out[idx] * (limit / gn)
    return out


def _grads(model, seed=0):
    """Gradients whose slices' norms span 1e-4 .. 1e2 times lambda ||W|| along both axes,
    so that clipping the wrong axis changes the result."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        g = torch.randn(p.shape, generator=gen)
        for d in range(min(p.dim(), 2)):
            shape = [1] * p.dim()
            shape[d] = p.shape[d]
            g = g * (10 ** (torch.rand(p.shape[d], generator=gen) * 3 - 2)).reshape(shape)
        p.grad = g * LAM


def test_hf_conv1d_is_clipped_per_output_column():
    # Regression: GPT-2's Conv1D holds its weight as (in, out); AGC clipped its rows, one
    # per *input* feature, instead of its columns, one per output unit.
    torch.manual_seed(0)
    layer = Conv1D(nf=6, nx=5)  # y = x @ W + b, W (5, 6)
    assert layer.weight.shape == (5, 6)
    _grads(layer)
    w, g = layer.weight.detach().clone(), layer.weight.grad.clone()
    expected = _clip_units(w, g, [(slice(None), j) for j in range(6)])
    rows = _clip_units(w, g, [(i,) for i in range(5)])
    assert not torch.allclose(expected, rows)  # the two axes really differ here
    AGC(torch.optim.SGD(layer.parameters(), lr=0.1), layer, clipping=LAM, eps=EPS,
        exclude=()).clip_gradients()
    torch.testing.assert_close(layer.weight.grad.double(), expected, rtol=1e-6, atol=1e-12)
    # the unit really is an output: column j's weights all feed output j
    x = torch.randn(3, 5)
    torch.testing.assert_close(layer(x)[:, 2], x @ layer.weight[:, 2] + layer.bias[2])


def _rows(p):
    return [(i,) for i in range(p.shape[0])]


@pytest.mark.parametrize("build", [
    lambda: nn.LSTM(3, 4, num_layers=2, proj_size=2),
    lambda: nn.GRU(3, 4),
    lambda: nn.Bilinear(3, 4, 5),
    lambda: nn.Embedding(7, 3),
])
def test_other_known_layers_are_clipped_per_output_row(build):
    torch.manual_seed(0)
    m = build()
    _grads(m)
    expected = {n: _clip_units(p.detach(), p.grad, _rows(p) if p.dim() >= 2 else [(...,)])
                for n, p in m.named_parameters()}
    AGC(torch.optim.SGD(m.parameters(), lr=0.1), m, clipping=LAM, eps=EPS,
        exclude=()).clip_gradients()
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad.double(), expected[n], rtol=1e-6, atol=1e-12, msg=n)


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(4, 6))  # a layout nobody told AGC
        self.token = nn.Parameter(torch.randn(1, 1, 6))  # a vector: one unit

    def forward(self, x):
        return x @ self.table + self.token[0]


class WithCustom(nn.Module):
    def __init__(self):
        super().__init__()
        self.custom = Custom()
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.custom(x))


def test_unknown_weight_layout_is_refused_naming_it():
    model = WithCustom()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"parameter 'custom.table' \(shape \(4, 6\)\) of module "
                       r"'custom' \(Custom\).*layouts=\{'custom.table': 'rows'\}"):
        AGC(opt, model)
    assert layouts_of(model)[id(model.custom.token)] == ("whole", 1)
    AGC(opt, model, exclude=["custom.table", "head"])  # left unclipped: accepted


@pytest.mark.parametrize("given", [{"custom.table": "columns"}, {"custom": "columns"}, "columns"])
def test_unknown_weight_is_clipped_as_told(given):
    torch.manual_seed(0)
    model = WithCustom()
    _grads(model)
    w, g = model.custom.table.detach().clone(), model.custom.table.grad.clone()
    expected = _clip_units(w, g, [(slice(None), j) for j in range(6)])
    token = _clip_units(model.custom.token.detach(), model.custom.token.grad, [(...,)])
    agc = AGC(torch.optim.SGD(model.parameters(), lr=0.1), model, clipping=LAM, eps=EPS,
              exclude=["head"], layouts=given)
    agc.clip_gradients()
    torch.testing.assert_close(model.custom.table.grad.double(), expected, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(model.custom.token.grad.double(), token, rtol=1e-6, atol=1e-12)


def test_bare_parameters_need_their_layouts():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"parameter '<param 0>' \(shape \(3, 4\)\).*a bare "
                       "parameter carries no layer type"):
        AGC(opt, net.parameters(), exclude=())
    AGC(opt, list(net.named_parameters()), exclude=["1.weight"], layouts={"0.weight": "rows"})
    with pytest.raises(ValueError, match="layouts must be one of"):
        AGC(opt, net, layouts="diagonal")


def test_gpt2_and_vit_every_weight_known():
    cfg = transformers.GPT2Config(n_embd=8, n_layer=1, n_head=2, vocab_size=20, n_positions=8)
    gpt2 = transformers.GPT2LMHeadModel(cfg)
    layouts = layouts_of(gpt2)
    assert layouts[id(gpt2.transformer.h[0].attn.c_attn.weight)] == ("columns", 1)
    assert layouts[id(gpt2.transformer.h[0].mlp.c_proj.weight)] == ("columns", 1)
    assert layouts[id(gpt2.transformer.wpe.weight)] == ("rows", 1)  # an nn.Embedding
    AGC(torch.optim.SGD(gpt2.parameters(), lr=0.1), gpt2)
    vit = transformers.ViTModel(transformers.ViTConfig(
        hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        image_size=16, patch_size=8))
    layouts = layouts_of(vit)
    assert layouts[id(vit.embeddings.cls_token)] == ("whole", 1)  # (1, 1, 8): a vector
    # (1, 5, 8) position table: one unit per position, as GPT-2's nn.Embedding table
    table = vit.embeddings.position_embeddings
    assert layouts[id(table)] == ("table", 1)
    _grads(vit)
    expected = _clip_units(table.detach()[0], table.grad[0], _rows(table[0]))
    AGC(torch.optim.SGD(vit.parameters(), lr=0.1), vit, clipping=LAM, eps=EPS,
        exclude=()).clip_gradients()
    torch.testing.assert_close(table.grad[0].double(), expected, rtol=1e-6, atol=1e-12)
