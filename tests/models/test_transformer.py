"""The transformer family: the standard variant is torch's post-LN encoder layer, padding
is invisible, every variant trains, and the no-softmax no-LayerNorm model can count
exactly at any length."""

import pytest
import torch
import torch.nn as nn

from signalprop.data import count_batch
from signalprop.models import TransformerConfig, transformer

VARIANTS = [("softmax", "layer"), ("softmax", "none"), ("none", "layer"), ("none", "none")]


def test_standard_variant_equals_torch_encoder_layer():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    net = transformer(in_features=8, d_model=8, heads=2, mlp_hidden=16)
    layer = net.layers[0]
    with torch.no_grad():
        layer.attn.in_proj_weight.copy_(ref.self_attn.in_proj_weight)
        layer.attn.in_proj_bias.copy_(ref.self_attn.in_proj_bias)
        layer.attn.out_proj.load_state_dict(ref.self_attn.out_proj.state_dict())
        layer.attn.norm.load_state_dict(ref.norm1.state_dict())
        layer.ff.fc1.load_state_dict(ref.linear1.state_dict())
        layer.ff.fc2.load_state_dict(ref.linear2.state_dict())
        layer.ff.norm.load_state_dict(ref.norm2.state_dict())
    h = torch.randn(3, 5, 8)
    torch.testing.assert_close(layer(h), ref(h), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("normalize,norm", VARIANTS)
def test_padding_is_invisible_and_every_parameter_learns(normalize, norm):
    net = transformer(vocab_size=10, d_model=12, heads=2, normalize=normalize, norm=norm,
                      mlp_hidden=8, pad_id=10)
    x = torch.randint(0, 10, (2, 6))
    padded = torch.cat([x, torch.full((2, 4), 10)], dim=1)
    torch.testing.assert_close(net(padded)[:, :6], net(x), rtol=1e-5, atol=1e-5)
    net(padded).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_count_model_counts_exactly_at_any_length():
    """One head, one-hot colours, no softmax, no norm, no residual: with W_q = W_k = I
    (times sqrt(d)) and W_v = I the attention output of a token is the count of its colour
    in its own coordinate; the head reads it (the construction the paper's model learns)."""
    d = 10
    net = transformer(vocab_size=d, d_model=d, normalize="none", norm="none",
                      residual=False, embedding="onehot")
    attn = net.layers[0].attn
    with torch.no_grad():
        eye = torch.eye(d)
        eye[0, 0] = 0.0  # the background colour attends to nothing
        attn.in_proj_weight.copy_(torch.cat([eye * d**0.5, eye, eye]))
        attn.in_proj_bias.zero_()
        attn.out_proj.weight.copy_(torch.eye(d))
        attn.out_proj.bias.zero_()
        net.head.weight.copy_(torch.ones(1, d))
        net.head.bias.zero_()
    for length in (4, 36, 400):
        x, y = count_batch(length, 4, generator=torch.Generator().manual_seed(length))
        assert torch.equal(net(x).squeeze(-1).round().long(), y)


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        TransformerConfig()
    with pytest.raises(ValueError, match="d_model >= vocab_size"):
        transformer(vocab_size=12, d_model=8, embedding="onehot")
    with pytest.raises(ValueError, match="normalize must be one of"):
        transformer(vocab_size=4, normalize="max")
    with pytest.raises(ValueError, match="token ids"):
        transformer(vocab_size=4, d_model=8)(torch.randn(2, 3))
