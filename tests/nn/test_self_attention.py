"""SelfAttention against torch's MultiheadAttention / TransformerEncoderLayer with the same
weights, and against the explicit formulas of its weight normalizations."""

import math

import pytest
import torch
import torch.nn as nn

from signalprop.nn import SelfAttention


def _copy_from_mha(attn: SelfAttention, mha: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        attn.in_proj_weight.copy_(mha.in_proj_weight)
        attn.in_proj_bias.copy_(mha.in_proj_bias)
        attn.out_proj.weight.copy_(mha.out_proj.weight)
        attn.out_proj.bias.copy_(mha.out_proj.bias)


@pytest.mark.parametrize("heads", [1, 4])
def test_softmax_attention_equals_multihead_attention(heads):
    mha = nn.MultiheadAttention(8, heads, batch_first=True)
    nn.init.normal_(mha.in_proj_bias)
    attn = SelfAttention(8, heads, norm="none", residual=False)
    _copy_from_mha(attn, mha)
    x = torch.randn(3, 6, 8)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[1, 4:] = True
    want = mha(x, x, x, key_padding_mask=mask, need_weights=False)[0]
    torch.testing.assert_close(attn(x, mask), want, rtol=1e-5, atol=1e-6)


def test_post_norm_block_equals_transformer_encoder_sublayer():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=4, dropout=0.0,
                                       batch_first=True)
    attn = SelfAttention(8, 2, norm="layer", residual=True, norm_first=False)
    _copy_from_mha(attn, layer.self_attn)
    x = torch.randn(2, 5, 8)
    want = layer.norm1(x + layer._sa_block(x, None, None))
    torch.testing.assert_close(attn(x), want, rtol=1e-5, atol=1e-6)
    pre = SelfAttention(8, 2, norm="rms", norm_first=True)
    torch.testing.assert_close(pre(x), x + pre.attend(pre.norm(x)))
    assert pre.adds_tapped_branch() and not attn.adds_tapped_branch()


@pytest.mark.parametrize("normalize,fn", [
    ("none", lambda s: s), ("relu", torch.relu), ("sigmoid", torch.sigmoid)])
def test_elementwise_weights_follow_the_formula(normalize, fn):
    attn = SelfAttention(6, 2, normalize=normalize, norm="none", residual=False)
    x = torch.randn(2, 5, 6)
    q, k, v = (x @ attn.in_proj_weight.T + attn.in_proj_bias).chunk(3, dim=-1)
    split = [t.view(2, 5, 2, 3).transpose(1, 2) for t in (q, k, v)]
    w = fn(split[0] @ split[1].transpose(-2, -1) / math.sqrt(3))
    out = (w @ split[2]).transpose(1, 2).reshape(2, 5, 6)
    torch.testing.assert_close(attn(x), attn.out_proj(out))
    torch.testing.assert_close(attn.weights(x), w)


@pytest.mark.parametrize("normalize", ["softmax", "none", "relu", "sigmoid"])
def test_padding_changes_nothing_and_duplication_doubles_only_sums(normalize):
    attn = SelfAttention(8, 2, normalize=normalize, norm="none", residual=False)
    nn.init.zeros_(attn.out_proj.bias)
    x = torch.randn(1, 4, 8)
    padded = torch.cat([x, torch.randn(1, 3, 8)], dim=1)
    mask = torch.tensor([[False] * 4 + [True] * 3])
    torch.testing.assert_close(attn(padded, mask)[:, :4], attn(x), rtol=1e-5, atol=1e-6)
    twice = attn(torch.cat([x, x], dim=1))[:, :4]
    factor = 1.0 if normalize == "softmax" else 2.0
    torch.testing.assert_close(twice, factor * attn(x), rtol=1e-5, atol=1e-5)


def test_sequence_first_layout_and_gradients():
    attn = SelfAttention(4, 1, normalize="none", batch_first=False)
    x = torch.randn(5, 2, 4, requires_grad=True)
    y = attn(x)
    assert y.shape == (5, 2, 4)
    torch.testing.assert_close(y.transpose(0, 1), SelfAttention.forward(
        _batch_first_copy(attn), x.transpose(0, 1)))
    y.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in attn.parameters())


def _batch_first_copy(attn):
    other = SelfAttention(4, 1, normalize="none")
    other.load_state_dict(attn.state_dict())
    return other


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        SelfAttention(6, 4)
    with pytest.raises(ValueError, match="normalize must be one of"):
        SelfAttention(4, 1, normalize="entmax")
    with pytest.raises(ValueError, match="norm must be one of"):
        SelfAttention(4, 1, norm="batch")
    with pytest.raises(ValueError, match="key_padding_mask"):
        SelfAttention(4, 1)(torch.randn(1, 3, 4), torch.zeros(1, 3))
