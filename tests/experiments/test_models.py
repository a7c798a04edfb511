"""The model factories the training claims sweep (signalprop.experiments._models) and the
grid-edge rule of _rows, each against an independent computation."""

import math

import numpy as np
import pytest
import torch

from signalprop.experiments._models import (
    autoencoder,
    gaussian_mlp,
    relu_mlp,
    relu_resmlp,
    snn_mlp,
)


def test_gaussian_mlp_variances_and_prediction() -> None:
    torch.manual_seed(0)
    net = gaussian_mlp(4, 1024, sigma_w2=1.5, sigma_b2=0.1, in_features=1024)
    w = net.fc2.weight
    # sample variance of 1M N(0, 1.5/1024) draws: relative s.e. sqrt(2/1M) ~ 0.0014
    assert w.var().item() * 1024 == pytest.approx(1.5, rel=0.01)
    assert net.fc2.bias.var().item() == pytest.approx(0.1, rel=0.15)  # 1024 draws: s.e. 4.4%
    x = torch.randn(256, 1024)
    # the measured pre-activation second moment of layer 3 vs the mean-field q-map
    acts = {}
    net.fc3.register_forward_hook(lambda m, i, o: acts.setdefault("h", o))
    with torch.no_grad():
        net(x)
    pred = net.predicted_spp(input_var=1.0)
    q3 = pred.records[3].avg_var + pred.records[3].avg_sq_mean
    assert (acts["h"] ** 2).mean().item() == pytest.approx(q3, rel=0.05)


def test_snn_stays_normalized_with_depth() -> None:
    torch.manual_seed(0)
    net = snn_mlp(16, 512, in_features=512, num_classes=3, dropout=0.05).eval()
    h = torch.randn(2048, 512)
    with torch.no_grad():
        for m in list(net)[:-1]:
            h = m(h)
    # SELU's fixed point (0, 1); finite width and sampling leave a few percent
    assert abs(h.mean().item()) < 0.1 and h.var().item() == pytest.approx(1.0, abs=0.15)


def test_relu_nets_and_autoencoder_shapes() -> None:
    x = torch.randn(8, 5)
    assert relu_mlp(3, 16, 5, 4, batchnorm=True)(x).shape == (8, 4)
    net = relu_resmlp(32, 64, 5, 4)
    torch.manual_seed(0)
    h = torch.randn(512, 5)
    with torch.no_grad():
        stem = net.stem(h)
        out = stem
        for i in range(32):
            out = getattr(net, f"block{i}")(out)
    # branch scale 1/sqrt(depth): variance grows at most ~e-fold over 32 blocks
    assert out.var().item() / stem.var().item() < math.e * 1.5
    assert autoencoder(5, (4, 2, 4))(x).shape == x.shape
    with pytest.raises(ValueError, match="unknown activation"):
        autoencoder(5, (4,), activation="cube")


def test_at_grid_edge_matches_sorted_ends() -> None:
    from signalprop.experiments._rows import at_grid_edge

    rng = np.random.default_rng(0)
    for _ in range(50):
        grid = list(rng.choice([1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3], rng.integers(1, 6),
                               replace=False))
        ends = sorted(grid)
        for value in grid:  # an edge: the first or last of the sorted grid, if 3 or more
            assert at_grid_edge(value, grid) == (len(grid) >= 3 and value in (ends[0], ends[-1]))


def test_ghost_batchnorm_normalizes_each_chunk_like_batchnorm() -> None:
    from signalprop.experiments._models import GhostBatchNorm1d

    torch.manual_seed(0)
    x = torch.randn(10, 3) * 4 + 2
    ghost, plain = GhostBatchNorm1d(3, ghost=4), torch.nn.BatchNorm1d(3)
    out = ghost(x)
    ref = torch.cat([plain(c) for c in x.split(4)])  # chunks of 4, 4 and 2
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(ghost.running_mean, plain.running_mean)  # updated per chunk alike
    ghost.eval()
    assert torch.allclose(ghost(x), plain.eval()(x))  # eval: running statistics
    small = GhostBatchNorm1d(3, ghost=64).train()
    assert torch.allclose(small(x), torch.nn.BatchNorm1d(3)(x), atol=1e-6)  # one chunk
    with pytest.raises(ValueError, match="ghost"):
        GhostBatchNorm1d(3, ghost=1)
    net = relu_resmlp(2, 8, 4, 3, batchnorm=True, ghost_batch=4)
    assert isinstance(net.block0.norm, GhostBatchNorm1d) and net.block0.norm.ghost == 4


def test_flatten_options_take_images() -> None:
    from signalprop.experiments._models import flat_gaussian_mlp

    x = torch.randn(5, 3, 2, 2)
    for net in (relu_mlp(2, 8, 12, 4, flatten=True), relu_resmlp(2, 8, 12, 4, flatten=True),
                snn_mlp(2, 8, 12, 4, flatten=True),
                flat_gaussian_mlp(depth=2, width=8, sigma_w2=1.0, in_features=12,
                                  num_classes=4)):
        torch.manual_seed(0)
        assert net(x).shape == (5, 4)
    flat = relu_mlp(2, 8, 12, 4, flatten=True)
    same = relu_mlp(2, 8, 12, 4)
    same.load_state_dict({k: v for k, v in flat.state_dict().items()})
    assert torch.equal(flat(x), same(x.reshape(5, 12)))  # the flatten is the only change
