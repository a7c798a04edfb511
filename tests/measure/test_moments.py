"""channel_moments against a float64 computation on the whole tensor."""

import math

import pytest
import torch

from signalprop.measure import channel_moments


def reference(t, channel_dim=1, subtract=None):
    x = t.double() - (subtract.double() if subtract is not None else 0)
    if x.dim() <= 1:
        x = x.reshape(1, -1)
        channel_dim = 0
    d = channel_dim % x.dim()
    dims = [i for i in range(x.dim()) if i != d]
    mean = x.mean(dims)
    var = x.var(dims, unbiased=False)
    return (mean**2).mean().item(), var.mean().item()


@pytest.mark.parametrize(
    "shape,channel_dim",
    [((8, 32, 16, 16), 1), ((8, 64, 2, 2), 1), ((4, 50, 7), -1), ((300, 24), 1),
     ((2, 3, 4, 5, 6), 1), ((5, 6, 7), 0), ((17,), 0)],
)
@pytest.mark.parametrize("offset", [0.0, 0.7, 1e3])
def test_matches_float64_reference(shape, channel_dim, offset):
    t = torch.randn(*shape) * 1.5 + offset
    m = channel_moments(t, channel_dim)
    sq, var = reference(t, channel_dim)
    # fast path: ~1e-7 (1 + mean^2/var); exact path beyond mean^2/var = 100
    assert m.avg_sq_mean == pytest.approx(sq, rel=1e-6)
    assert m.avg_var == pytest.approx(var, rel=1e-5)
    assert m.nonfinite == 0


def test_huge_mean_shift_keeps_full_precision():
    t = torch.randn(4, 8, 32, 32, dtype=torch.float64) * 1e-3 + 1e4
    m = channel_moments(t)
    assert m.avg_var == pytest.approx(reference(t)[1], rel=1e-9)
    assert m.max_ratio > 1e10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("offset", [0.0, 1e4])  # both the fast and the exact path
def test_inputs_are_never_modified(dtype, offset):
    t = (torch.randn(3, 4, 6, 6, dtype=torch.float64) + offset).to(dtype)
    other = torch.randn_like(t)
    t_copy, other_copy = t.clone(), other.clone()
    channel_moments(t)
    channel_moments(t, subtract=other)
    assert torch.equal(t, t_copy) and torch.equal(other, other_copy)


def test_half_precision_and_non_contiguous_inputs():
    base = torch.randn(4, 16, 8, 8) + 0.5
    bf = base.bfloat16()
    assert channel_moments(bf).avg_var == pytest.approx(reference(bf)[1], rel=1e-9)
    nc = base.permute(0, 2, 3, 1)  # channels last, non-contiguous view
    m = channel_moments(nc, channel_dim=-1)
    assert m.avg_var == pytest.approx(reference(base)[1], rel=1e-6)


def test_subtract_gives_statistics_of_the_difference():
    x, y = torch.randn(6, 10, 5, 5), torch.randn(6, 10, 5, 5) * 2
    m = channel_moments(x, subtract=y)
    sq, var = reference(x, subtract=y)
    assert m.avg_var == pytest.approx(var, rel=1e-9)
    assert m.avg_sq_mean == pytest.approx(sq, rel=1e-9)
    with pytest.raises(ValueError, match="subtract has shape"):
        channel_moments(x, subtract=y[:1])


def test_nonfinite_values_are_counted_exactly():
    t = torch.randn(4, 3, 5, 5)
    t[0, 0, 0, 0] = math.inf
    t[1, 2, 3, 4] = math.nan
    t[3, 1, 0, 0] = -math.inf
    m = channel_moments(t)
    assert m.nonfinite == 3
    assert not math.isfinite(m.avg_var)


def test_large_finite_values_do_not_overflow():
    t = torch.randn(2, 4, 8, 8) * 1e25  # squares overflow float32, not float64
    m = channel_moments(t)
    assert m.nonfinite == 0
    assert m.avg_var == pytest.approx(reference(t)[1], rel=1e-9)
