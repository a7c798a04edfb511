"""jacobian_spectrum and hessian_extremes on attention models: they differentiate a backward
pass, which torch's fused scaled_dot_product_attention kernels cannot (on main: "derivative
for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented"); they
run attention on the math backend instead. Checked against dense Jacobians / Hessians
(torch.autograd.functional) with NumPy's SVD / eigh."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

import signalprop as sp


def encoder(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True,
                                       norm_first=norm_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).double().eval()


def dense_svals(f, x):
    """Per-example singular values of the Jacobian of f, from the dense Jacobian."""
    out = []
    for b in range(x.shape[0]):
        xb = x[b : b + 1]
        jac = torch.autograd.functional.jacobian(f, xb)
        out.append(np.sort(np.linalg.svd(jac.reshape(f(xb).numel(), -1).numpy(),
                                         compute_uv=False))[::-1])
    return out


def dense_hessian_eigs(model, loss, names):
    """Eigenvalues of the Hessian of loss(model) over the parameters ``names`` (dense)."""
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    flat0 = torch.cat([params[n].detach().reshape(-1) for n in names])

    def f(flat):
        chunks = torch.split(flat, [s.numel() for s in shapes])
        return loss(lambda *a, **k: functional_call(
            model, {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}, a, k))

    with sdpa_kernel(SDPBackend.MATH):
        h = torch.autograd.functional.hessian(f, flat0)
    return np.linalg.eigvalsh(h.numpy())


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_jacobian_against_dense(norm_first):
    enc = encoder(norm_first)
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    res = sp.jacobian_spectrum(enc, x, k=3)  # on main: RuntimeError, derivative not implemented
    assert res.complete and res.steps == 24
    for b, sv in enumerate(dense_svals(enc, x)):
        np.testing.assert_allclose(res.top[b], sv[:3], rtol=1e-8)
        np.testing.assert_allclose(res.bottom[b], sv[::-1][:3], rtol=1e-6, atol=1e-8)


def test_transformer_encoder_hessian_against_dense():
    enc = encoder(True)
    model = nn.Sequential(enc, nn.Flatten(), nn.Linear(24, 3)).double()
    for name, p in model.named_parameters():
        p.requires_grad_(name == "0.layers.0.self_attn.in_proj_bias")  # 24 parameters
    x, y = torch.randn(4, 3, 8, dtype=torch.float64), torch.tensor([0, 2, 1, 1])
    ce = nn.CrossEntropyLoss()
    h = sp.hessian_extremes(model, x, y, loss_fn=ce, k=3)
    ev = dense_hessian_eigs(model, lambda m: ce(m(x), y), ["0.layers.0.self_attn.in_proj_bias"])
    assert h.complete and h.dim == 24
    np.testing.assert_allclose(h.largest, ev[::-1][:3], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(h.smallest, ev[:3], rtol=1e-7, atol=1e-10)


def tiny_bert():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=16,
                                  max_position_embeddings=16, attn_implementation="sdpa")
    torch.manual_seed(0)
    return transformers.BertModel(cfg, add_pooling_layer=False).double().eval()


class Embedded(nn.Module):
    """BERT from input embeddings (B, T, H): a floating input to differentiate."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, e):
        return self.bert(inputs_embeds=e).last_hidden_state


def test_huggingface_bert_sdpa_jacobian_against_dense():
    bert = tiny_bert()
    assert bert.config._attn_implementation == "sdpa"
    model = Embedded(bert)
    e = torch.randn(2, 4, 8, dtype=torch.float64)
    res = sp.jacobian_spectrum(model, e, k=2)
    assert res.complete
    for b, sv in enumerate(dense_svals(model, e)):
        np.testing.assert_allclose(res.top[b], sv[:2], rtol=1e-8)
        np.testing.assert_allclose(res.bottom[b], sv[::-1][:2], rtol=1e-6, atol=1e-8)


def test_huggingface_bert_sdpa_hessian_against_dense():
    bert = tiny_bert()
    name = "encoder.layer.0.attention.self.query.weight"  # 64 parameters, before attention
    for n, p in bert.named_parameters():
        p.requires_grad_(n == name)
    ids = torch.randint(0, 30, (3, 5), generator=torch.Generator().manual_seed(1))

    def loss(out):
        return out.last_hidden_state.sin().sum()

    h = sp.hessian_extremes(bert, {"input_ids": ids}, loss_fn=loss, k=2, steps=64)
    ev = dense_hessian_eigs(bert, lambda m: loss(m(input_ids=ids)), [name])
    assert h.complete and h.dim == 64
    np.testing.assert_allclose(h.largest, ev[::-1][:2], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(h.smallest, ev[:2], rtol=1e-7, atol=1e-10)
