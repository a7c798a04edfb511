"""MobileNetV2-style and plain CNNs: shapes, which blocks have a shortcut, forward and
backward with every parameter getting a gradient, registry presets."""

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.models import InvertedResidual, create_model, mobilenetv2, plain_cnn


def test_mobilenet_blocks_and_shortcuts():
    net = mobilenetv2(in_channels=1)
    blocks = [m for m in net.features if isinstance(m, InvertedResidual)]
    assert [b.use_residual for b in blocks] == [True, False, True, False, True]
    dw = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert all(m.groups == m.in_channels == m.out_channels for m in dw) and len(dw) == 5
    # the linear bottleneck: no activation after the projection
    assert isinstance(blocks[2].conv[-1], nn.BatchNorm2d)


@pytest.mark.parametrize("factory", [lambda: mobilenetv2(in_channels=3, padding_mode="circular"),
                                     lambda: plain_cnn(depth=3, width=8, activation="relu"),
                                     lambda: create_model("mobilenetv2_small", num_classes=5),
                                     lambda: create_model("plain_cnn", depth=2)])
def test_forward_backward_every_parameter_gets_a_gradient(factory):
    torch.manual_seed(0)
    net = factory()
    out = net(torch.randn(4, 3, 16, 16))
    assert out.shape[0] == 4 and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation='gelu' is not allowed"):
        mobilenetv2(activation="gelu")
    with pytest.raises(ValueError, match="depth and width"):
        plain_cnn(depth=0)
    assert "mobilenetv2_small" in sp.models.list_models()
