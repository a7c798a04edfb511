"""collapse on constructed embeddings whose statistics are known in closed form."""

import math

import pytest
import torch
import torch.nn as nn

import signalprop as sp

ID = nn.Identity()


def _with_singular_values(b, d, s, seed=0):
    """A (b, d) matrix with exactly the singular values ``s``."""
    gen = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(b, len(s), generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, len(s), generator=gen, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(s, dtype=torch.float64)) @ v.T


def test_effective_rank_is_exp_entropy_of_normalized_singular_values():
    z = _with_singular_values(64, 32, [1.0] * 5)
    assert sp.collapse(ID, z).effective_rank == pytest.approx(5.0)
    s = [4.0, 2.0, 1.0, 1.0]
    p = [v / sum(s) for v in s]
    want = math.exp(-sum(q * math.log(q) for q in p))
    assert sp.collapse(ID, _with_singular_values(50, 20, s)).effective_rank == pytest.approx(want)


def test_one_hot_embeddings_std_and_cosines_by_hand():
    d, m = 8, 4
    b = d * m
    z = torch.eye(d).repeat(m, 1)  # every dimension used by m of the B examples
    r = sp.collapse(ID, z)
    p = 1 / d
    assert r.std == pytest.approx(math.sqrt(b / (b - 1) * p * (1 - p)))
    assert r.cos_examples == pytest.approx(d * m * (m - 1) / (b * (b - 1)))
    assert r.effective_rank == pytest.approx(d)
    assert (r.dim, r.batch_size, r.dead_dims, r.cos_views) == (d, b, 0, None)


def test_complete_collapse_and_dead_dimensions():
    z = torch.tensor([[1.0, 2.0, 0.0, 3.0]]).repeat(16, 1)
    r = sp.collapse(ID, z, x2=2 * z)
    assert r.std == pytest.approx(0.0, abs=1e-12) and r.std_ratio == pytest.approx(0, abs=1e-12)
    assert r.cos_examples == pytest.approx(1.0) and r.cos_views == pytest.approx(1.0)
    assert r.effective_rank == pytest.approx(1.0) and r.dead_dims == 4
    z = torch.randn(64, 6)
    z[:, 1] = 0.0
    z[:, 4] = 5.0
    assert sp.collapse(ID, z).dead_dims == 2
    assert sp.collapse(ID, z, x2=-z).cos_views == pytest.approx(-1.0)
    assert sp.collapse(ID, torch.zeros(8, 3)).effective_rank == 0.0


def test_isotropic_gaussian_has_std_ratio_one_within_monte_carlo_error():
    """std_ratio averaged over 20 batches of 512 Gaussian embeddings (d = 32): the
    normalized coordinates have variance 1/d, so the ratio is 1 up to O(1/B) and noise."""
    vals = torch.tensor([sp.collapse(ID, torch.randn(512, 32)).std_ratio for _ in range(20)])
    se = vals.std().item() / math.sqrt(len(vals))
    assert abs(vals.mean().item() - 1.0) < 4 * se + 2e-3


def test_model_output_flattened_nonfinite_reported_and_nothing_changed():
    net = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4))
    x = torch.randn(10, 1, 12)
    before = net[1].running_mean.clone()
    r = sp.collapse(net, x, x2=x + 0.01)
    assert r.dim == 40 and r.batch_size == 10 and r.label == "Sequential"
    assert torch.equal(net[1].running_mean, before) and net.training
    with pytest.raises(ValueError, match="batchnorm='error' refuses them"):
        sp.collapse(net, x, batchnorm="error")
    bad = torch.randn(5, 3)
    bad[2, 1] = float("nan")
    r = sp.collapse(ID, bad)
    assert r.nonfinite == 1 and math.isnan(r.std) and math.isnan(r.effective_rank)
    with pytest.raises(ValueError, match="x2 gives embeddings of shape"):
        sp.collapse(ID, torch.randn(5, 3), x2=torch.randn(4, 3))
    with pytest.raises(ValueError, match="dead_tol must be finite"):
        sp.collapse(ID, torch.randn(5, 3), dead_tol=-1.0)


def test_result_round_trips():
    r = sp.collapse(ID, torch.randn(20, 4), x2=torch.randn(20, 4), label="enc")
    back = sp.CollapseResult.from_json(r.to_json())
    assert back == r and "std_ratio" in r.to_json() and "enc" in r.to_csv()
    assert "effective rank" in r.summary()
