"""ResNetV2: every preset runs forward/backward at batch 1; NF structure; initialisation."""

import math

import pytest
import torch
import torch.nn as nn

from signalprop import theory
from signalprop.models import (
    PRESETS,
    NFBottleneck,
    PreActBottleneck,
    create_model,
    list_models,
    resnetv2,
)
from signalprop.nn import ScaledStdConv2d, SkipInit


def _check_forward_backward(model, x):
    out = model(x)
    assert out.shape == (x.shape[0], model.cfg.num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["bn", "none", "nf"])
@pytest.mark.parametrize("preset", sorted(PRESETS, key=lambda p: sum(PRESETS[p])))
def test_every_preset_forward_backward_batch_one(preset, norm):
    torch.manual_seed(0)
    model = create_model(preset, norm=norm, num_classes=10)
    # 64x64 leaves 2x2 maps in the last stage: enough values per channel for train-mode BN.
    x = torch.randn(1, 3, 64, 64)
    if norm == "none" and sum(PRESETS[preset]) > 60:
        # Unnormalized He-init nets double their variance per block; at this depth the
        # forward overflows float32, exactly what SPPs diagnose. Check the graph in float64.
        model, x = model.double(), x.double()
    _check_forward_backward(model, x)
    assert len(model.signal_blocks()) == 1 + sum(PRESETS[preset])


def test_presets_are_registered_with_their_layer_counts():
    assert set(PRESETS) <= set(list_models())
    # weight layers = 3 per bottleneck + stem + classifier (the paper's names for 288
    # and 600 round these); the 1000-layer preset has exactly 1000 convolutions
    for name in ("resnetv2_50", "resnetv2_101", "resnetv2_152", "resnetv2_200"):
        assert 3 * sum(PRESETS[name]) + 2 == int(name.split("_")[1])
    assert 3 * sum(PRESETS["resnetv2_1000"]) + 1 == 1000
    assert PRESETS["resnetv2_600"] == (50, 50, 50, 50)
    assert PRESETS["resnetv2_288"] == (24, 24, 24, 24)


def test_nf_beta_follows_expected_variance_with_resets():
    alpha = 0.3
    model = resnetv2([3, 2], norm="nf", alpha=alpha, stem="cifar", width=0.25)
    blocks = [m for _, m in model.signal_blocks()[1:]]
    assert all(isinstance(b, NFBottleneck) for b in blocks)
    expected = 1.0
    for s, depth in enumerate([3, 2]):
        for b in range(depth):
            blk = blocks[sum([3, 2][:s]) + b]
            assert blk.beta == pytest.approx(math.sqrt(expected))
            expected = (1.0 if b == 0 else expected) + alpha**2
            assert blk.expected_var == pytest.approx(expected)
            assert blk.is_transition == (b == 0)
            assert (blk.shortcut is not None) == (b == 0)


def test_nf_uses_scaled_ws_and_gamma_acts_bn_uses_batchnorm():
    nf = resnetv2([1, 1], norm="nf", activation="silu", stem="cifar", width=0.25)
    convs = [m for m in nf.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(isinstance(m, ScaledStdConv2d) for m in convs)
    # the gain gamma * act(x) is applied inside the Scaled WS conv that reads act1
    blk = nf.stages[0][0]
    assert blk.act1.gamma * blk.conv1.gamma == pytest.approx(theory.gamma("silu"))
    bn = resnetv2([1, 1], norm="bn", stem="cifar", width=0.25)
    assert isinstance(bn.stages[0][0], PreActBottleneck)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 3 * 2 + 1
    none = resnetv2([1, 1], norm="none", stem="cifar", width=0.25)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in none.modules())


def test_he_init_variance_and_classifier_init():
    torch.manual_seed(0)
    model = resnetv2([2, 2], norm="bn", stem="cifar", width=0.5)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            var = m.weight.var().item()
            n = m.weight.numel()
            # sample variance of n normals: relative SE sqrt(2/n)
            assert abs(var * fan_in / 2.0 - 1) < 5 * math.sqrt(2 / n), name
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
            assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
    assert torch.all(model.fc.bias == 0)
    assert abs(model.fc.weight.std().item() - 0.01) < 0.002


def test_every_parameter_and_buffer_is_initialised_deterministically():
    # Modules are built on the meta device: every tensor must be written by init.
    a = resnetv2([2, 1], norm="nf", stem="imagenet", width=0.25, skipinit=True,
                 skipinit_init=0.5)
    torch.manual_seed(3)
    b = resnetv2([2, 1], norm="nf", stem="imagenet", width=0.25, skipinit=True,
                 skipinit_init=0.5)
    torch.manual_seed(3)
    c = resnetv2([2, 1], norm="nf", stem="imagenet", width=0.25, skipinit=True,
                 skipinit_init=0.5)
    for (name, tb), tc in zip(b.state_dict().items(), c.state_dict().values()):
        assert torch.equal(tb, tc), name
        assert torch.isfinite(tb).all(), name
    gains = [m.gain.item() for m in a.modules() if isinstance(m, SkipInit)]
    assert gains == [0.5] * 3
    for m in a.modules():
        if isinstance(m, ScaledStdConv2d):
            assert torch.all(m.gain == 1)
            assert m.bias is None or torch.all(m.bias == 0)


def test_width_channels_and_in_chans():
    m = resnetv2([1, 1, 1, 1], width=0.5, in_chans=1, num_classes=7, stem="cifar")
    assert m.stem.conv.in_channels == 1 and m.stem.conv.out_channels == 32
    assert m.num_features == 1024
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 7)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name_or_depths="resnetv2_51"), "unknown ResNetV2 preset 'resnetv2_51'; valid: resnetv2_50"),
        (dict(norm="layer"), "unknown norm 'layer'; valid: bn, none, nf"),
        (dict(stem="tiny"), "unknown stem 'tiny'; valid: imagenet, cifar"),
        (dict(activation="relu7"), "unknown activation 'relu7'; valid names:.*relu6"),
        (dict(name_or_depths=[3, 0]), "depths must be 1 to 4 positive block counts"),
        (dict(width=0), "width must be > 0"),
    ],
)
def test_bad_arguments_name_valid_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resnetv2(**kwargs)


def test_unknown_registry_name_suggests_close_ones():
    with pytest.raises(ValueError, match="did you mean resnetv2_600"):
        create_model("resnetv2_60")


def test_stem_output_size_matches_a_forward():
    for stem in ("imagenet", "cifar"):
        m = resnetv2([1], stem=stem, width=0.125)
        for h, w in ((65, 63), (224, 224), (32, 17)):
            assert m.stem(torch.randn(1, 3, h, w)).shape[-2:] == m.stem_output_size(h, w)


def test_predicted_spp_matches_signal_blocks_and_the_nf_schedule():
    m = resnetv2([3, 2], norm="nf", stem="cifar", width=0.25, alpha=0.3)
    pred = m.predicted_spp()
    assert pred.kind == "predicted"
    assert pred.names == [n for n, _ in m.signal_blocks()]
    expected = [blk.expected_var for _, blk in m.signal_blocks()[1:]]
    assert pred.avg_var[1:] == pytest.approx(expected, rel=1e-9)


def test_dropout_and_drop_path_rates_and_their_eval_identity():
    torch.manual_seed(0)
    plain = resnetv2([2, 2], norm="nf", stem="cifar", width=0.125, num_classes=10)
    torch.manual_seed(0)
    reg = resnetv2([2, 2], norm="nf", stem="cifar", width=0.125, num_classes=10,
                   dropout=0.25, drop_path=0.2)
    blocks = [blk for _, blk in reg.signal_blocks()[1:]]
    assert blocks[0].drop_path is None  # block 0 of 4: rate 0
    assert [b.drop_path.p for b in blocks[1:]] == pytest.approx([0.05, 0.1, 0.15])
    assert not any(b.adds_tapped_branch() for b in blocks[1:]) and blocks[0].adds_tapped_branch()
    assert reg.dropout.p == 0.25 and isinstance(plain.dropout, torch.nn.Identity)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), reg.eval()(x))  # same weights; eval: no drops
    bn = resnetv2([1, 1], norm="bn", stem="cifar", width=0.125, drop_path=0.5)
    assert bn.signal_blocks()[2][1].drop_path.p == pytest.approx(0.25)
    with pytest.raises(ValueError, match="drop_path is not available"):
        resnetv2([1, 1], norm="fixup", drop_path=0.1)
    with pytest.raises(ValueError, match="dropout must be in"):
        resnetv2([1], dropout=1.0)
