"""ResNetV2 norm="skipinit" / "fixup" / "gn_ws", and the NF block's folded gains."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop as sp
from signalprop import theory
from signalprop.models import NORMS, FixupBottleneck, PreActBottleneck, resnetv2
from signalprop.nn import ScalarBias, ScaledStdConv2d, SkipInit, fixup_scale, standardize_weight

NEW = ("skipinit", "fixup", "gn_ws")


def test_norms_list_the_new_variants():
    assert set(NEW) <= set(NORMS)


@pytest.mark.parametrize("norm", NEW)
def test_forward_backward_every_parameter_gets_a_gradient(norm):
    torch.manual_seed(0)
    model = resnetv2([2, 1], norm=norm, stem="cifar", width=0.25, num_classes=5)
    out = model(torch.randn(3, 3, 16, 16))
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("norm", NEW)
def test_reset_parameters_writes_every_parameter_and_buffer(norm):
    torch.manual_seed(1)
    a = resnetv2([2, 1], norm=norm, stem="imagenet", width=0.25)
    with torch.no_grad():  # poison everything, then re-initialise
        for t in [*a.parameters(), *a.buffers()]:
            t.fill_(float("nan")) if t.is_floating_point() else t.fill_(7)
    torch.manual_seed(2)
    a.reset_parameters()
    torch.manual_seed(2)
    b = resnetv2([2, 1], norm=norm, stem="imagenet", width=0.25)
    torch.manual_seed(2)
    b.reset_parameters()
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.isfinite(ta.float()).all(), name
        assert torch.equal(ta, tb), name


def test_skipinit_variant_structure_and_init():
    model = resnetv2([2, 2], norm="skipinit", stem="cifar", width=0.25, skipinit_init=0.0)
    blocks = [b for _, b in model.signal_blocks()[1:]]
    assert all(isinstance(b, PreActBottleneck) and isinstance(b.skip_gain, SkipInit) for b in blocks)
    assert all(b.skip_gain.gain.item() == 0 for b in blocks)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in model.modules())
    assert all(b.conv1.bias is not None for b in blocks)
    assert torch.all(model.fc.weight == 0) and torch.all(model.fc.bias == 0)
    gained = resnetv2([1], norm="skipinit", stem="cifar", width=0.25, skipinit_init=0.3)
    assert gained.stages[0][0].skip_gain.gain.item() == pytest.approx(0.3)


def test_fixup_variant_follows_the_fixup_rule():
    torch.manual_seed(0)
    depths = [3, 2]
    model = resnetv2(depths, norm="fixup", stem="cifar", width=0.5)
    blocks = [b for _, b in model.signal_blocks()[1:]]
    assert all(isinstance(b, FixupBottleneck) for b in blocks)
    L = sum(depths)
    scale = fixup_scale(L, 3)
    assert scale == pytest.approx(L ** -0.25)
    for b in blocks:
        for conv in (b.conv1, b.conv2):
            n, fan_in = conv.weight.numel(), conv.weight[0].numel()
            ratio = conv.weight.var().item() / (2.0 / fan_in * scale**2)
            assert abs(ratio - 1) < 5 * math.sqrt(2 / n)  # 5 SE of a sample variance
            assert conv.bias is None
        assert torch.all(b.conv3.weight == 0)
        assert b.skip_gain.gain.item() == 1.0
        biases = [m for m in b.modules() if isinstance(m, ScalarBias)]
        assert len(biases) == 6 and all(m.bias.item() == 0 for m in biases)
    assert torch.all(model.fc.weight == 0) and torch.all(model.fc.bias == 0)
    assert isinstance(model.final_norm, ScalarBias) and isinstance(model.head_bias, ScalarBias)


def test_gn_ws_variant_uses_groupnorm_and_gamma_scaled_ws_convs():
    model = resnetv2([1, 1], norm="gn_ws", activation="silu", stem="cifar", width=0.25)
    blk = model.stages[1][0]
    assert isinstance(blk.norm1, nn.GroupNorm) and blk.norm1.num_groups == 32
    assert blk.norm2.num_groups == 32  # 32 channels at width 0.25
    assert isinstance(model.final_norm, nn.GroupNorm)
    for conv in (blk.conv1, blk.conv2, blk.conv3, blk.shortcut):
        assert isinstance(conv, ScaledStdConv2d) and conv.gamma == pytest.approx(theory.gamma("silu"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("norm", ["skipinit", "fixup"])
def test_identity_at_init_non_transition_blocks_pass_their_input_unchanged(norm):
    torch.manual_seed(0)
    model = resnetv2([3, 2], norm=norm, stem="cifar", width=0.25)
    res = sp.spp(model, torch.randn(8, 3, 16, 16))
    trans = set(res.meta["transitions"])
    for i in range(1, len(res.records)):
        if i not in trans:  # x_{l+1} = x_l exactly: same statistics
            assert res.records[i].avg_var == res.records[i - 1].avg_var
            assert res.records[i].avg_sq_mean == res.records[i - 1].avg_sq_mean


@pytest.mark.parametrize("norm,independent", [("bn", False), ("skipinit", True), ("fixup", True),
                                              ("gn_ws", True), ("nf", True)])
def test_batch_independence_of_every_variant(norm, independent):
    model = resnetv2([1, 1], norm=norm, stem="cifar", width=0.25)
    res = sp.batch_independence(model, torch.randn(4, 3, 16, 16))
    assert res.independent is independent
    assert res.leak["eval"] == 0.0


def _hand_ws(conv, gamma):
    return standardize_weight(conv.weight, conv.gain, gamma, conv.eps, conv.eps_mode)


@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_nf_block_equals_the_paper_formula_with_gamma_scaled_activations(activation):
    # out = shortcut + alpha * conv3(g act(conv2(g act(conv1(g act(x / beta)))))), written
    # with unit-gain Scaled WS weights and explicit gamma-scaled activations
    torch.manual_seed(0)
    model = resnetv2([2], norm="nf", activation=activation, stem="cifar", width=0.25, alpha=0.3)
    act = {"relu": F.relu, "silu": F.silu}[activation]
    g = theory.gamma(activation)
    x = torch.randn(2, 16, 8, 8) * 1.3
    for blk in model.stages[0]:
        with torch.no_grad():
            blk.conv1.bias.normal_()  # non-zero biases: 1/beta must not scale them
            a = g * act(x / blk.beta)
            h = F.conv2d(a, _hand_ws(blk.conv1, 1.0), blk.conv1.bias)
            h = F.conv2d(g * act(h), _hand_ws(blk.conv2, 1.0), blk.conv2.bias, padding=1)
            h = F.conv2d(g * act(h), _hand_ws(blk.conv3, 1.0), blk.conv3.bias)
            sc = F.conv2d(a, _hand_ws(blk.shortcut, 1.0), blk.shortcut.bias) if blk.shortcut else x
            expected = sc + 0.3 * h
            got = blk(x)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
            x = got


@pytest.mark.parametrize("norm,gain", [("skipinit", 0.0), ("skipinit", 0.5), ("fixup", 0.0)])
def test_predicted_spp_of_skipinit_and_fixup_matches_measurement(norm, gain):
    # the theory's unnormalized He-init schedule with the branch gain (Fixup: its zero last
    # conv makes every branch add 0 at init); within 15% at 64x64 with 16 examples
    torch.manual_seed(0)
    model = resnetv2([3, 3], norm=norm, stem="cifar", width=0.5, skipinit_init=gain)
    res = sp.spp(model, torch.randn(16, 3, 64, 64))
    stem = res.records[0]
    pred = model.predicted_spp((64, 64), stem_var=stem.avg_var, stem_sq_mean=stem.avg_sq_mean)
    for m, p in zip(res.records, pred.records):
        assert abs(m.avg_var / p.avg_var - 1) <= 0.15, (m, p)
