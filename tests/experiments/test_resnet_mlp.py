"""The residual MLP the normfree claims train: shapes, every parameter gets a gradient,
the signal variance at init per norm against the theory (doubling for 'none', identity
blocks for SkipInit and NF's zero gain, 1 + k alpha^2 for NF with the gain at 1), and the
regularizers acting in training only."""

import math

import pytest
import torch

from signalprop.experiments._resnet_mlp import NORMS, NFMLPBlock, resnet_mlp


@pytest.mark.parametrize("norm", NORMS)
def test_forward_backward_and_every_parameter_gets_a_gradient(norm: str) -> None:
    torch.manual_seed(0)
    net = resnet_mlp(3, 16, norm=norm, dropout=0.25, drop_path=0.1)
    if norm == "skipinit":  # a zero head and zero gains: only the head gets a gradient
        with torch.no_grad():  # at init; move off zero to check the graph reaches everything
            net.head.weight.fill_(0.1)
            for block in list(net)[1:4]:
                block.skip_gain.gain.fill_(0.5)
    if norm == "nf":
        with torch.no_grad():
            for block in list(net)[1:4]:
                block.skip_gain.gain.fill_(0.5)
    out = net(torch.randn(8, 40))
    assert out.shape == (8, 10) and torch.isfinite(out).all()
    out.square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _block_vars(net: torch.nn.Sequential, x: torch.Tensor) -> list[float]:
    h, out = net.stem(x), []
    for block in list(net)[1:-4]:
        h = block(h)
        out.append(float(h.pow(2).mean()))
    return out


@torch.no_grad()
def test_none_doubles_the_second_moment_per_block() -> None:
    """He init: over weight draws E[(x + f(x))^2] = E[x^2] + E[f(x)^2] and E[f(x)^2] =
    E[x^2] (both layers of f keep the second moment of a ReLU'd input), so each block
    doubles it. One draw of width 256 misses 2 by a few percent (mean shift and x-f
    correlations of order 1/sqrt(width)); the mean ratio over 12 draws must lie within 4
    of its standard errors of 2."""
    ratios = []
    for seed in range(12):
        torch.manual_seed(seed)
        net = resnet_mlp(3, 256, norm="none", in_features=256)
        v = _block_vars(net, torch.randn(1024, 256))
        ratios += [b / a for a, b in zip(v, v[1:])]
    mean, se = float(torch.tensor(ratios).mean()), float(torch.tensor(ratios).std() / 24**0.5)
    assert abs(mean - 2.0) < 4 * se and se < 0.05  # so 1.8 or 2.2 would fail


@torch.no_grad()
def test_skipinit_and_nf_start_as_the_identity_and_nf_grows_by_alpha_squared() -> None:
    torch.manual_seed(0)
    x = torch.randn(2048, 40)
    skip = resnet_mlp(5, 256, norm="skipinit")
    assert torch.equal(skip(x), torch.zeros(2048, 10))  # zero head
    h = skip.stem(x)
    assert torch.equal(skip.block4(skip.block0(h)), h)
    nf = resnet_mlp(4, 512, norm="nf", alpha=0.3)
    h = nf.stem(x)
    assert torch.equal(nf.block2(h), h)  # the reference's SkipInit gain starts at 0
    for block in nf.modules():
        if isinstance(block, NFMLPBlock):
            block.skip_gain.gain.fill_(1.0)
    # Scaled WS stem: unit variance; each block adds alpha^2 (beta = sqrt(expected var))
    v = _block_vars(nf, torch.randn(2048, 40))
    expected = [1 + 0.09 * k for k in range(1, 5)]
    assert v == pytest.approx(expected, rel=0.06)
    assert [round(b.beta**2, 6) for b in nf.modules() if isinstance(b, NFMLPBlock)] == \
        pytest.approx([1 + 0.09 * k for k in range(4)])


def test_regularizers_act_in_training_only_and_drop_rates_grow_linearly() -> None:
    torch.manual_seed(0)
    net = resnet_mlp(4, 32, norm="bn", dropout=0.5, drop_path=0.2)
    assert [b.drop_path.p for b in list(net)[1:5]] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    x = torch.randn(16, 40)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="norm"):
        resnet_mlp(2, 8, norm="ln")
    with pytest.raises(ValueError, match="dropout"):
        resnet_mlp(2, 8, dropout=1.0)
    with pytest.raises(ValueError, match="depth and width"):
        resnet_mlp(0, 8)
    with torch.no_grad():
        assert math.isfinite(float(resnet_mlp(1, 4)(torch.randn(2, 40)).sum()))
