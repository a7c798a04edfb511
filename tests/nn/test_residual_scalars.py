"""SkipInit, ReZero, ScalarBias, GroupNorm groups and the Fixup initializer."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from signalprop import theory
from signalprop.nn import (
    BranchTap,
    ResidualBlock,
    ReZero,
    ScalarBias,
    SkipInit,
    fixup_init_,
    fixup_scale,
    group_count,
    group_norm,
    he_gain,
)


def test_skipinit_and_scalar_bias_are_learnable_scalars_with_reset():
    gate, bias = SkipInit(0.25), ScalarBias(-0.5)
    x = torch.randn(3, 4)
    torch.testing.assert_close(gate(x), 0.25 * x)
    torch.testing.assert_close(bias(x), x - 0.5)
    (gate(x).sum() + bias(x).sum()).backward()
    assert gate.gain.grad.item() == pytest.approx(x.sum().item(), rel=1e-5)
    assert bias.bias.grad.item() == x.numel()
    with torch.no_grad():
        gate.gain.fill_(3.0)
        bias.bias.fill_(3.0)
    gate.reset_parameters()
    bias.reset_parameters()
    assert gate.gain.item() == 0.25 and bias.bias.item() == -0.5


def test_rezero_is_identity_at_init_and_adds_the_scaled_branch():
    torch.manual_seed(0)
    branch = nn.Sequential(nn.Linear(6, 6), nn.Tanh())
    block = ReZero(branch)
    assert isinstance(block, ResidualBlock) and isinstance(block.branch_tap, BranchTap)
    x = torch.randn(5, 6)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.skip_gain.gain.fill_(0.3)
    torch.testing.assert_close(block(x), x + 0.3 * branch(x))
    # the gain gets the gradient <dL/dy, f(x)>, so ReZero can leave the identity
    block.skip_gain.gain.data.zero_()
    block(x).sum().backward()
    assert block.skip_gain.gain.grad.item() == pytest.approx(branch(x).sum().item(), rel=1e-5)
    with pytest.raises(ValueError, match="branch must be an nn.Module, got builtin_function_or_method"):
        ReZero(torch.tanh)


def test_rezero_branch_variance_is_measured_at_the_tap():
    import signalprop as sp

    torch.manual_seed(0)
    blocks = nn.Sequential(*[ReZero(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), init=0.5)
                             for _ in range(3)])
    x = torch.randn(64, 8)
    res = sp.spp(blocks, x)
    h = x
    for rec, blk in zip(res.records, blocks):
        f = blk.branch(h).detach()
        assert rec.res_var == pytest.approx(f.double().var(0, unbiased=False).mean().item(), rel=1e-6)
        h = blk(h).detach()
        assert rec.avg_var == pytest.approx(h.double().var(0, unbiased=False).mean().item(), rel=1e-6)


@pytest.mark.parametrize("channels,groups", [(48, 32), (256, 32), (7, 32), (64, 4), (30, 8), (1, 32)])
def test_group_count_is_the_largest_divisor_not_above_groups(channels, groups):
    brute = max(g for g in range(1, groups + 1) if channels % g == 0 and g <= channels)
    assert group_count(channels, groups) == brute
    gn = group_norm(channels, groups)
    assert gn.num_groups == brute and gn.num_channels == channels


def test_group_count_rejects_non_positive():
    with pytest.raises(ValueError, match="channels must be >= 1, got 0"):
        group_count(0)
    with pytest.raises(ValueError, match="groups must be >= 1, got 0"):
        group_count(8, 0)


def test_he_gain_squared_is_one_over_the_second_moment():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(2_000_000)
    for name in ("relu", "tanh", "silu"):
        second = np.mean(theory.get_activation(name)(z) ** 2)
        # Monte Carlo: relative SE of the mean of phi(z)^2 is below 2e-3 at this sample size
        assert he_gain(name) ** 2 == pytest.approx(1 / second, rel=1e-2)
    assert he_gain("relu") ** 2 == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("L,m", [(16, 3), (8, 2), (100, 4), (5, 1)])
def test_fixup_scale_formula(L, m):
    expected = 1.0 if m == 1 else L ** (-1 / (2 * m - 2))
    assert fixup_scale(L, m) == pytest.approx(expected, rel=1e-15)


def test_fixup_init_zeroes_last_layers_and_classifier_and_rescales_the_rest():
    torch.manual_seed(0)
    L, m = 9, 3
    branches = [[nn.Conv2d(32, 32, 3), nn.Conv2d(32, 32, 1), nn.Conv2d(32, 32, 3)]
                for _ in range(L)]
    head = nn.Linear(32, 10)
    fixup_init_(branches, head)
    scale = L ** (-1 / (2 * m - 2))
    for branch in branches:
        for layer in branch[:-1]:
            fan_in = layer.weight[0].numel()
            n = layer.weight.numel()
            expected_var = 2.0 / fan_in * scale**2
            # sample variance of n normals: relative SE sqrt(2/n); 5 SE
            assert layer.weight.var().item() / expected_var == pytest.approx(1, abs=5 * math.sqrt(2 / n))
            assert torch.all(layer.bias == 0)
        assert torch.all(branch[-1].weight == 0) and torch.all(branch[-1].bias == 0)
    assert torch.all(head.weight == 0) and torch.all(head.bias == 0)


def test_fixup_init_rejects_bad_branches():
    with pytest.raises(ValueError, match="at least one residual branch"):
        fixup_init_([])
    with pytest.raises(ValueError, match=r"branches\[0\] holds \['ReLU'\]"):
        fixup_init_([[nn.ReLU()]])
    with pytest.raises(ValueError, match="classifier must be an nn.Linear, got Conv2d"):
        fixup_init_([[nn.Linear(2, 2)]], nn.Conv2d(2, 2, 1))
    with pytest.raises(ValueError, match="num_branches and layers_per_branch must be >= 1"):
        fixup_scale(0, 2)


def test_drop_path_keeps_the_mean_drops_whole_examples_and_is_off_in_eval():
    from signalprop.nn import DropPath

    torch.manual_seed(0)
    drop = DropPath(0.3)
    x = torch.randn(20000, 2, 3)
    out = drop(x)
    kept = (out != 0).flatten(1).any(dim=1)
    # whole examples dropped, with rate 0.3: the s.e. of the kept share is 0.0032
    assert (out[~kept] == 0).all() and torch.allclose(out[kept], x[kept] / 0.7)
    assert abs(kept.float().mean().item() - 0.7) < 4 * math.sqrt(0.21 / 20000)
    # E[out] = x: the mean over draws of a constant input, 20000 draws, s.e. 0.0046
    ones = drop(torch.ones(20000, 1))
    assert abs(ones.mean().item() - 1.0) < 4 * math.sqrt(0.3 / 0.7 / 20000)
    drop.eval()
    assert torch.equal(drop(x), x)
    assert torch.equal(DropPath(0.0)(x), x)
    with pytest.raises(ValueError, match="p must be in"):
        DropPath(1.0)
