"""to_normfree on ResNetV2, torchvision-style and HuggingFace-style models: structure, weights,
SPPs, batch independence, calibration, report, and models it cannot analyse."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from styled_models import BasicBlock, Bottleneck, HFEncoderModel, TVResNet

import signalprop as sp
from signalprop import theory
from signalprop.convert import ConversionError, ConversionReport, GatedBranch, to_normfree
from signalprop.nn import ScaledStdConv2d, SkipInit, WSLinear

RELU_GAMMA = theory.gamma("relu")


def _second_moments(res):
    # mean_c E[x_c^2] = mean_c Var(x_c) + mean_c (E x_c)^2
    return [r.avg_var + r.avg_sq_mean for r in res.records]


def test_resnetv2_becomes_the_nf_resnet_with_weights_copied():
    torch.manual_seed(0)
    bn = sp.models.resnetv2([2, 2], norm="bn", stem="cifar", width=0.25)
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    nf, report = to_normfree(bn, skipinit_init=1.0)
    assert report.method == "ResNetV2 rebuild" and nf.cfg.norm == "nf"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in nf.modules())
    assert all(isinstance(b.skip_gain, SkipInit) and b.skip_gain.gain.item() == 1.0
               for _, b in nf.signal_blocks()[1:])
    for name, m in nf.named_modules():
        if isinstance(m, ScaledStdConv2d):
            assert torch.equal(m.weight, state[f"{name}.weight"]), name
    assert report.count("removed BatchNorm2d") == 3 * 4 + 1
    assert [c.module for c in report.not_converted] == ["stem.conv.bias"]
    for k, v in bn.state_dict().items():  # the original is untouched
        assert torch.equal(v, state[k]), k


def test_converted_resnetv2_spp_follows_the_nf_schedule_and_is_batch_independent():
    torch.manual_seed(0)
    bn = sp.models.resnetv2([4, 4], norm="bn", stem="cifar", width=0.25)
    nf, _ = to_normfree(bn, skipinit_init=1.0)
    res = sp.spp(nf, torch.randn(8, 3, 32, 32))
    # squared mean near 0, variance on 1 + k alpha^2 within 25% (as the foundation's NF test)
    for rec, (_, blk) in zip(res.records[1:], nf.signal_blocks()[1:]):
        assert rec.avg_sq_mean <= 0.1, rec
        assert abs(rec.avg_var / blk.expected_var - 1) <= 0.25, (rec, blk.expected_var)
    assert not sp.batch_independence(bn, torch.randn(4, 3, 16, 16)).independent
    assert sp.batch_independence(nf, torch.randn(4, 3, 16, 16)).independent


@pytest.mark.parametrize("block,layers,width", [(BasicBlock, [2, 2, 2], 16), (Bottleneck, [2, 2, 2], 8)])
def test_torchvision_style_resnet_structure(block, layers, width):
    torch.manual_seed(0)
    model = TVResNet(block, layers, width=width)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    nf, report = to_normfree(model)
    assert report.method == "torch.fx graph"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in nf.modules())
    assert type(nf.fc) is nn.Linear  # the classifier stays plain
    assert type(nf.layer1[0]) is block  # the user's classes and names are kept
    for name, m in nf.named_modules():
        if isinstance(m, nn.Conv2d):
            assert isinstance(m, ScaledStdConv2d), name
            assert torch.equal(m.weight, state[f"{name}.weight"]), name
            # the stem reads the image; every other convolution reads a ReLU output
            expected = 1.0 if name == "conv1" else RELU_GAMMA
            assert m.gamma == pytest.approx(expected), name
    gates = [n for n, m in nf.named_modules() if isinstance(m, GatedBranch)]
    last_bn = "bn2" if block is BasicBlock else "bn3"
    assert gates == [f"layer{s}.{b}.{last_bn}" for s in (1, 2, 3) for b in range(2)]
    assert report.residual_blocks == [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(2)]
    x = torch.randn(4, 3, 32, 32)
    assert not sp.batch_independence(model, x).independent
    assert sp.batch_independence(nf, x).independent
    out = nf(x)
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_torchvision_style_spp_identity_at_zero_gain_and_bounded_growth():
    torch.manual_seed(0)
    model = TVResNet(BasicBlock, [4, 4, 4])
    x = torch.randn(8, 3, 32, 32)
    nf0, _ = to_normfree(model)  # gains 0: relu(x + 0) = x for the non-negative stream
    res0 = sp.spp(nf0, x)
    for prev, rec in zip(res0.records, res0.records[1:]):
        if rec.res_var is not None:  # non-transition blocks
            assert rec.avg_var == prev.avg_var and rec.avg_sq_mean == prev.avg_sq_mean
    a = 1.0
    nf1, _ = to_normfree(model, skipinit_init=a, example_input=torch.randn(8, 3, 32, 32))
    m = _second_moments(sp.spp(nf1, x))
    # Minkowski: rms(relu(x + a f)) <= rms(x) + a rms(f), and calibration makes rms(f) = 1
    # (on its own batch; 20% allowed on this one), so rms grows at most linearly in depth
    for k, mk in enumerate(m):
        assert math.sqrt(mk) <= math.sqrt(m[0]) + 1.2 * a * k, (k, m)


def test_huggingface_style_encoder():
    torch.manual_seed(0)
    model = HFEncoderModel(layers=4)
    x = torch.randn(8, 10, 12)
    nf, report = to_normfree(model)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in nf.modules())
    assert type(nf.classifier) is nn.Linear
    for name in ("encoder.layer.0.attention.self.query", "encoder.layer.3.output.dense",
                 "pooler.0", "embeddings.patch_embeddings"):
        assert isinstance(nf.get_submodule(name), WSLinear), name
    # the output dense layer reads the GELU of the intermediate layer
    assert nf.encoder.layer[0].output.dense.gamma == pytest.approx(theory.gamma("gelu"))
    assert nf.encoder.layer[0].attention.self.query.gamma == 1.0
    # two residual additions per layer; the position-embedding addition is not one
    assert report.residual_blocks == [f"encoder.layer.{i}.{part}" for i in range(4)
                                      for part in ("attention.output", "output")]
    assert isinstance(nf.encoder.layer[2].output.dropout, GatedBranch)
    assert not sp.batch_independence(model, x).independent
    assert sp.batch_independence(nf, x).independent
    res = sp.spp(nf, x, channel_dim=-1)  # gains 0: every layer passes its input unchanged
    assert len({(r.avg_var, r.avg_sq_mean) for r in res.records}) == 1


def test_huggingface_style_calibrated_growth_is_linear_not_geometric():
    torch.manual_seed(0)
    model = HFEncoderModel(layers=8)
    x, x_cal = torch.randn(8, 10, 12), torch.randn(8, 10, 12)
    a = 1.0
    nf, report = to_normfree(model, skipinit_init=a, example_input=x_cal)
    assert report.count("branch calibrated") == 16
    m = _second_moments(sp.spp(nf, x, channel_dim=-1))

    def bound(k):  # Minkowski, as for the ResNet: layer k is 2 k additions past layer 0
        return (math.sqrt(m[0]) + 1.2 * a * 2 * k) ** 2

    for k, mk in enumerate(m):
        assert mk <= bound(k) * (1 + 1e-12), (k, m)  # sqrt(m0)**2 may round below m0
    raw, _ = to_normfree(model, skipinit_init=a)  # without calibration: geometric growth
    m_raw = _second_moments(sp.spp(raw, x, channel_dim=-1))
    assert m_raw[-1] > 10 * bound(len(m) - 1)


def test_calibrated_branch_has_unit_second_moment_on_the_calibration_batch():
    torch.manual_seed(0)
    model = TVResNet(BasicBlock, [2, 2, 2])
    x = torch.randn(6, 3, 32, 32)
    nf, _ = to_normfree(model, skipinit_init=0.5, example_input=x)
    nf.eval()
    seen = []
    for m in nf.modules():
        if isinstance(m, GatedBranch):
            m.branch_tap.register_forward_hook(lambda mod, a, o: seen.append(o.double().square().mean().item()))
    with torch.no_grad():
        nf(x)
    assert len(seen) == 6
    assert seen == pytest.approx([1.0] * 6, rel=1e-5)


def test_report_lists_what_could_not_be_converted_and_round_trips():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.up = nn.ConvTranspose2d(4, 4, 1)
            self.norm = nn.GroupNorm(2, 4)

        def forward(self, x):
            x = x + torch.relu(self.bn(self.conv(x)))  # branch ends in a function
            x = self.norm(self.up(x))
            return x + x  # not a residual connection we can tell apart

    new, report = to_normfree(nn.Sequential(nn.Conv2d(3, 4, 1), Odd()))
    reasons = [(c.module, c.action, c.detail) for c in report.not_converted]
    no_gain = [d for m, a, d in reasons if (m, a) == ("1", "no residual gain")]
    assert len(no_gain) == 2
    assert "the branch ends in call_function 'relu', not in a module" in no_gain
    assert "cannot be told from the shortcut" in no_gain[1]
    assert ("1.up", "kept ConvTranspose2d", "no Scaled WS version of this layer") in reasons
    assert any(m == "1.norm" and "per-example normalization" in d for m, a, d in reasons)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in new.modules())
    back = ConversionReport.from_dict(report.to_dict())
    assert back.to_dict() == report.to_dict() and str(back) == str(report)


def test_untraceable_model_raises_naming_the_module():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            if x.mean() > 0:
                return x + self.bn(self.conv(x))
            return x

    with pytest.raises(ConversionError, match=r"tracing failed in module '1' \(DataDependent\)"):
        to_normfree(nn.Sequential(nn.Conv2d(3, 3, 1), DataDependent()))


def test_functional_batch_norm_raises_naming_the_modules():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.weight, self.bias = nn.Parameter(torch.ones(3)), nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return x + F.batch_norm(self.conv(x), None, None, self.weight, self.bias, True)

    with pytest.raises(ConversionError, match=r"batch_norm is called as a function in '0', '1'"):
        to_normfree(nn.Sequential(Functional(), Functional()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="model must be an nn.Module, got int"):
        to_normfree(3)
    with pytest.raises(ValueError, match="skipinit_init must be a finite number, got nan"):
        to_normfree(nn.Linear(2, 2), skipinit_init=math.nan)
