"""bn_to_gn_ws: GroupNorm + Weight Standardization in place of BatchNorm."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from styled_models import BasicBlock, HFEncoderModel, TVResNet

import signalprop as sp
from signalprop import theory
from signalprop.convert import bn_to_gn_ws
from signalprop.nn import ScaledStdConv2d, standardize_weight


def test_conv_bn_pair_equals_group_norm_of_a_standardized_conv_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 48, 3, padding=1, bias=False), nn.BatchNorm2d(48), nn.ReLU(),
                          nn.Conv2d(48, 64, 3))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.normal_()
    new, report = bn_to_gn_ws(model)
    assert isinstance(new[1], nn.GroupNorm) and new[1].num_groups == 24  # largest divisor <= 32
    assert isinstance(new[0], ScaledStdConv2d) and isinstance(new[3], ScaledStdConv2d)
    assert new[0].gamma == 1.0 and new[3].gamma == pytest.approx(theory.gamma("relu"))
    x = torch.randn(2, 3, 8, 8)
    # by hand: Scaled WS (gain 1) of the original weights, then GroupNorm with BN's affine
    h = F.conv2d(x, standardize_weight(model[0].weight, None, 1.0), None, padding=1)
    h = F.relu(F.group_norm(h, 24, model[1].weight, model[1].bias, eps=model[1].eps))
    h = F.conv2d(h, standardize_weight(model[3].weight, None, theory.gamma("relu")), model[3].bias)
    torch.testing.assert_close(new(x), h, rtol=1e-5, atol=1e-5)
    assert any(c.module == "1" and c.action == "24 groups instead of 32" for c in report.not_converted)
    assert isinstance(model[1], nn.BatchNorm2d)  # the original is untouched


@pytest.mark.parametrize("build,x", [
    (lambda: TVResNet(BasicBlock, [2, 2, 2], width=32), torch.randn(4, 3, 32, 32)),
    (lambda: HFEncoderModel(hidden=64, layers=2), torch.randn(4, 10, 12)),
    (lambda: sp.models.resnetv2([1, 1], norm="bn", stem="cifar", width=0.25), torch.randn(4, 3, 16, 16)),
])
def test_styled_models_become_batch_independent(build, x):
    torch.manual_seed(0)
    model = build()
    new, report = bn_to_gn_ws(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in new.modules())
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert report.count("BatchNorm") == n_bn > 0
    assert not sp.batch_independence(model, x).independent
    res = sp.batch_independence(new, x)
    assert res.independent, res.summary()
    assert torch.isfinite(new(x)).all()


def test_untraceable_model_converts_with_gamma_one_and_says_so():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.bn = nn.BatchNorm2d(8)

        def forward(self, x):
            return self.bn(self.conv(torch.relu(x))) if x.sum() > 0 else x

    new, report = bn_to_gn_ws(Branchy())
    assert isinstance(new.bn, nn.GroupNorm) and new.conv.gamma == 1.0
    assert any(c.action == "gamma 1 for every convolution" for c in report.not_converted)


def test_bad_groups():
    for groups in (0, 2.5):
        with pytest.raises(ValueError, match="groups must be an integer >= 1"):
            bn_to_gn_ws(nn.BatchNorm2d(4), groups=groups)


def _mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.normal_()
    return model


@pytest.mark.parametrize("with_input", [False, True])
def test_batchnorm1d_on_features_becomes_layernorm_not_a_constant(with_input):
    # Regression: GroupNorm(32, 32) over (N, 32) normalizes single values, so every output
    # was the constant bias. One group is LayerNorm over the 32 features.
    model = _mlp()
    x = torch.randn(6, 8)
    new, report = bn_to_gn_ws(model, example_input=x if with_input else None)
    assert (new[1].num_groups, new[1].num_channels) == (1, 32)
    h = F.layer_norm(model[0](x), (32,), model[1].weight, model[1].bias, model[1].eps)
    torch.testing.assert_close(new(x), model[3](F.relu(h)), rtol=1e-5, atol=1e-5)
    assert new(x).std(dim=0).min() > 1e-3  # the examples' outputs differ
    refusal = next(c for c in report.not_converted if c.module == "1")
    assert refusal.action == "1 group instead of 32" and "LayerNorm over the 32" in refusal.detail
    assert ("one value per channel" if with_input else "shape is unknown") in refusal.detail
    assert sp.batch_independence(new, x).independent


def test_batchnorm1d_over_sequences_and_batchnorm2d_on_1x1_maps_follow_the_input_shape():
    seq = nn.Sequential(nn.Conv1d(4, 48, 3), nn.BatchNorm1d(48))
    new, _ = bn_to_gn_ws(seq, example_input=torch.randn(2, 4, 10))  # (N, 48, 8): positions
    assert new[1].num_groups == 24
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 16, 1), nn.BatchNorm2d(16))
    new, _ = bn_to_gn_ws(pooled, example_input=torch.randn(2, 3, 8, 8))  # (N, 16, 1, 1)
    assert new[2].num_groups == 1
    x = torch.randn(5, 3, 8, 8)
    assert new(x).flatten(1).std(dim=0).min() > 1e-3
    new, _ = bn_to_gn_ws(pooled)  # no input: a BatchNorm2d is taken to see a map
    assert new[2].num_groups == 16


def test_model_without_batchnorm_is_left_unchanged_unless_asked():
    # Regression: convolutions of a model without BatchNorm silently became WS convolutions.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    x = torch.randn(2, 3, 12, 12)
    new, report = bn_to_gn_ws(model)
    assert [type(m) for m in new] == [nn.Conv2d, nn.ReLU, nn.Conv2d] and new is not model
    torch.testing.assert_close(new(x), model(x), rtol=0, atol=0)
    assert not report.changes
    assert [(c.action, c.detail.split(";")[0]) for c in report.not_converted] == [
        ("nothing converted", "no BatchNorm module")]
    forced, report = bn_to_gn_ws(model, ws=True)
    assert isinstance(forced[0], ScaledStdConv2d) and isinstance(forced[2], ScaledStdConv2d)
    assert forced[2].gamma == pytest.approx(theory.gamma("relu"))
    assert report.count("Conv2d -> ScaledStdConv2d") == 2


def test_ws_false_keeps_the_convolutions():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    new, report = bn_to_gn_ws(model, ws=False)
    assert type(new[0]) is nn.Conv2d and isinstance(new[1], nn.GroupNorm)
    assert any(c.action == "convolutions kept" for c in report.not_converted)
    with pytest.raises(ValueError, match="ws must be None, True or False, got 'yes'"):
        bn_to_gn_ws(model, ws="yes")
