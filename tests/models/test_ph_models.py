"""PH ResNets and the PH mixer: shapes, gradients, PHYDI's identity at initialization, the
measured SPP against the theory's, and resnetv2(layer="phm")."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.models import create_model, ph_mixer, ph_resnet1d, resnetv2
from signalprop.nn import PHConv2d, PHMLinear


@pytest.mark.parametrize("factory", [lambda: ph_resnet1d(3, width=8, phydi=False),
                                     lambda: ph_mixer(2, dim=8, phydi=False)])
def test_forward_backward_every_parameter_gets_a_finite_gradient(factory):
    net = factory()
    x, y = torch.randn(4, 40), torch.randint(0, 10, (4,))
    nn.functional.cross_entropy(net(x), y).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_phydi_blocks_are_the_identity_at_initialization():
    net = ph_resnet1d(4, width=16)
    x = torch.randn(3, 1, 40)
    stem = net.stem(x)
    assert torch.equal(net.blocks(stem), stem)
    mixer = ph_mixer(2, dim=8)
    h = mixer.embed(torch.randn(3, 8, 5))
    assert torch.equal(mixer.blocks(h), h)


def test_measured_spp_follows_the_prediction_on_average():
    """Second moment of the trunk averaged over 6 networks (single networks scatter) within
    20% of the prediction: doubling per block without PHYDI, flat with it."""
    x = torch.randn(512, 40)
    for phydi in (False, True):
        totals = []
        for seed in range(6):
            torch.manual_seed(seed)
            net = ph_resnet1d(5, width=32, phydi=phydi)
            r = sp.spp(net, x)
            totals.append(np.array(r.avg_var) + np.array(r.avg_sq_mean))
        pred = net.predicted_spp(length=40)
        want = np.array(pred.avg_var) + np.array(pred.avg_sq_mean)
        assert np.mean(totals, axis=0) == pytest.approx(want, rel=0.2), phydi


def test_resnetv2_phm_uses_ph_convolutions_in_its_blocks():
    kw = dict(stem="cifar", width=0.125, in_chans=1, num_classes=10)
    dense = resnetv2([1, 1], norm="skipinit", **kw)
    phm = resnetv2([1, 1], norm="skipinit", layer="phm", n=4, **kw)
    kinds = {type(m) for m in phm.stages.modules() if isinstance(m, (nn.Conv2d, PHConv2d))}
    assert kinds == {PHConv2d}
    assert type(phm.stem.conv) is nn.Conv2d and type(phm.fc) is nn.Linear
    n_dense = sum(p.numel() for p in dense.stages.parameters())
    n_phm = sum(p.numel() for p in phm.stages.parameters())
    assert n_phm < 0.45 * n_dense
    x = torch.randn(2, 1, 8, 8)
    assert phm(x).shape == (2, 10)
    stem = phm.stem(x)
    assert torch.equal(phm.stages(stem), phm.stages[1][0].shortcut(
        phm.stages[1][0].act1(phm.stages[0][0].shortcut(phm.stages[0][0].act1(stem)))))
    assert phm.predicted_spp().names == [n for n, _ in phm.signal_blocks()]
    with pytest.raises(ValueError, match="layer='phm' needs norm in bn, none, skipinit"):
        resnetv2([1], norm="nf", layer="phm", **kw)
    with pytest.raises(ValueError, match="unknown layer 'quaternion'"):
        resnetv2([1], layer="quaternion", **kw)


def test_registered_presets_and_bad_arguments():
    assert type(create_model("ph_resnet1d", depth=2, width=8)).__name__ == "PHResNet1d"
    assert isinstance(create_model("ph_mixer", depth=1, dim=8).blocks[1].fc1, PHMLinear)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ph_resnet1d(2, kernel_size=4)
    with pytest.raises(ValueError, match="must be multiples of n=4"):
        ph_mixer(1, patch=4)  # 10 tokens
    with pytest.raises(ValueError, match="width=6 is not divisible"):
        ph_resnet1d(1, width=6)
