"""channel_moments against a float64 computation on the whole tensor, through the C
accelerator and through the torch fallback."""

import math

import pytest
import torch

from signalprop.measure import channel_moments
from signalprop.measure.forward import _moments


@pytest.fixture(params=["c", "torch"])
def fast_path(request, monkeypatch):
    """Run a test with the C accelerator and again with the torch-reduction fallback."""
    if request.param == "torch":
        monkeypatch.setattr(_moments, "_c_channel_sums", None)
    return request.param


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
def test_matches_float64_reference(shape, channel_dim, offset, fast_path):
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
    assert m.ratio > 1e10


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


def test_nonfinite_values_are_counted_exactly(fast_path):
    t = torch.randn(4, 3, 5, 5)
    t[0, 0, 0, 0] = math.inf
    t[1, 2, 3, 4] = math.nan
    t[3, 1, 0, 0] = -math.inf
    m = channel_moments(t)
    assert m.nonfinite == 3
    assert not math.isfinite(m.avg_var)


def test_large_finite_values_do_not_overflow(fast_path):
    t = torch.randn(2, 4, 8, 8) * 1e25  # squares overflow float32, not float64
    m = channel_moments(t)
    assert m.nonfinite == 0
    assert m.avg_var == pytest.approx(reference(t)[1], rel=1e-9)


def test_the_c_accelerator_is_built():
    # `pip install -e .` compiles src/signalprop/measure/forward/_cmoments.c; without a C compiler
    # the install still works (torch fallback), but this suite must exercise the C path.
    assert _moments._c_channel_sums is not None, "signalprop.measure.forward._cmoments is not built"


def _brute_force(t, outer, channels, inner):
    x = t.double().reshape(outer, channels, inner)
    s = x.sum(dim=(0, 2))
    return (s * s).sum().item(), (x * x).sum().item()


@pytest.mark.parametrize(
    "outer,channels,inner",
    [
        (8, 256, 256),   # long rows, one run per row
        (3, 5, 1000),    # long rows, several float runs per row, tail not a vector multiple
        (2, 3, 67),      # shortest long rows, with a tail
        (8, 1024, 16),   # short rows, several channel blocks
        (8, 2048, 4),
        (40, 6, 5),      # more rows than one float run: folded through double columns
        (300, 24, 1),    # channels-last: one element per row
        (2, 64, 300),    # fewer rows than threads (3): split by channels
        (1, 1, 17),      # a single channel, fewer elements than a vector
        (1, 7, 3),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_c_channel_sums_match_brute_force(outer, channels, inner, dtype, threads):
    t = (torch.randn(outer, channels, inner, dtype=torch.float64) * 1.5 + 0.3).to(dtype)
    sq, ss = _moments._c_channel_sums(t.numpy(), outer, channels, inner, threads)
    ref_sq, ref_ss = _brute_force(t, outer, channels, inner)
    rel = 1e-6 if dtype is torch.float32 else 1e-12
    assert sq == pytest.approx(ref_sq, rel=rel)
    assert ss == pytest.approx(ref_ss, rel=rel)


def test_c_channel_sums_reject_empty_layouts():
    t = torch.zeros(4)
    with pytest.raises(ValueError, match="must be positive"):
        _moments._c_channel_sums(t.numpy(), 0, 1, 4, 1)


@pytest.mark.parametrize(
    "make,sizes,message",
    [
        # sizes that do not match the buffer's length, too long or too short
        (lambda: torch.zeros(2, 3, 4), (2, 3, 5), r"x holds 24 elements, not outer \* channels "
         r"\* inner = 2 \* 3 \* 5"),
        (lambda: torch.zeros(2, 3, 4), (1, 3, 4), "x holds 24 elements"),
        (lambda: torch.zeros(2, 3, 4)[:1], (2, 3, 4), "x holds 12 elements"),
        # sizes whose product overflows int64 to the buffer's length (2**64 + 24 = 24)
        (lambda: torch.zeros(24), (2**32, 2**32, 24), "x holds 24 elements"),
        (lambda: torch.zeros(2, 3, 4, dtype=torch.float16), (2, 3, 4),
         "x must hold float32 or float64 values, got format 'e' with itemsize 2"),
        (lambda: torch.zeros(2, 3, 4, dtype=torch.int32), (2, 3, 4), "float32 or float64"),
        (lambda: torch.zeros(4, 3, 2).transpose(0, 2), (2, 3, 4), "x must be C-contiguous"),
        (lambda: torch.zeros(2, 3, 8)[..., ::2], (2, 3, 4), "x must be C-contiguous"),
    ],
)
def test_c_channel_sums_check_their_buffer(make, sizes, message):
    with pytest.raises(ValueError, match=message):
        _moments._c_channel_sums(make().numpy(), *sizes, 1)


def test_c_channel_sums_take_only_buffers():
    t = torch.zeros(2, 3, 4)
    with pytest.raises(TypeError):
        _moments._c_channel_sums(t.data_ptr(), 2, 3, 4, 1)  # a raw address is refused
    with pytest.raises(ValueError, match="x must hold float32 or float64 values, got format 'B'"):
        _moments._c_channel_sums(bytearray(96), 2, 3, 4, 1)
    # any buffer of the right type and length is read: 12 float64 zeros
    assert _moments._c_channel_sums(memoryview(bytearray(96)).cast("d"), 2, 3, 2, 1) == (0.0, 0.0)


def test_c_and_torch_paths_agree_with_several_threads(monkeypatch):
    # Large enough for the C kernel to split channels over threads (>= 32768 elements).
    t = torch.randn(4, 96, 12, 12) * 2 + 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        c = channel_moments(t)
        monkeypatch.setattr(_moments, "_c_channel_sums", None)
        fallback = channel_moments(t)
    finally:
        torch.set_num_threads(before)
    sq, var = reference(t)
    for m in (c, fallback):
        assert m.avg_sq_mean == pytest.approx(sq, rel=1e-6)
        assert m.avg_var == pytest.approx(var, rel=1e-6)


def test_c_channel_sums_do_not_depend_on_thread_timing():
    # each thread's partial sum of squares is added in thread order, not as it finishes
    t = torch.randn(8, 64, 12, 12) * 2 + 0.3  # by rows, over 4 threads
    first = _moments._c_channel_sums(t.numpy(), 8, 64, 144, 4)
    assert all(_moments._c_channel_sums(t.numpy(), 8, 64, 144, 4) == first for _ in range(50))
