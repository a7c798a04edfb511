"""The measuring residual add: y bit for bit torch.add, statistics against float64, the
fallbacks, and spp() through it equal to spp() through forward hooks."""

import math

import pytest
import torch

import signalprop as sp
from signalprop.measure import residual_add_moments, resolve_blocks
from signalprop.measure.forward import _fused_add, _spp
from signalprop.nn import ResidualBlock


def _stats64(t):
    x = t.double().reshape(t.shape[0], t.shape[1], -1)
    mean = x.mean(dim=(0, 2))
    var = x.var(dim=(0, 2), unbiased=False)
    return (mean**2).mean().item(), var.mean().item()


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_the_fused_kernel_is_built_and_matches_torch_add():
    # `pip install -e .` compiles _cfused.c; this suite must exercise the C path.
    assert _fused_add._c_residual_add_sums is not None
    assert _fused_add.fused_add_available()


@pytest.mark.parametrize(
    "shape",
    [(8, 64, 16, 16), (3, 5, 70), (2, 3, 1001),  # long rows (with tails)
     (8, 256, 4, 4), (40, 6, 5), (300, 24, 1), (1, 7, 3), (2, 3),  # short rows
     (1, 64, 600), (1, 4096, 9)],  # one row: threads split channels
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [1.0, 0.2, -1.3])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_y_is_torch_add_and_statistics_match_float64(shape, dtype, alpha, n_threads, threads):
    threads(n_threads)
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 0.5).to(dtype)
    b = (torch.randn(shape, generator=gen, dtype=torch.float64) * 0.7 - 0.3).to(dtype)
    y, mb, my = residual_add_moments(x, b, alpha)
    ref = torch.add(x, b, alpha=alpha)
    assert torch.equal(y, ref) and y.is_contiguous()
    for m, t in ((mb, b), (my, ref)):
        sq, var = _stats64(t)
        # float32: products and short sums round at ~6e-8; the variance, a difference,
        # loses (1 + sq / var) of that (the documented bound, with a factor 4 of slack)
        rel = 2.4e-7 * (1 + sq / var) if dtype is torch.float32 else 1e-12
        assert m.avg_sq_mean == pytest.approx(sq, rel=rel)
        assert m.avg_var == pytest.approx(var, rel=rel)
        assert m.nonfinite == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda x, b: (x.transpose(2, 3), b.transpose(2, 3)),  # non-contiguous
        lambda x, b: (x.bfloat16(), b.bfloat16()),  # half precision
        lambda x, b: (x.double(), b),  # dtypes differ
        lambda x, b: (x, b[:, :, :1, :1]),  # broadcast branch
    ],
)
def test_inputs_the_kernel_does_not_take_go_through_torch(make):
    x, b = make(torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6))
    y, mb, my = residual_add_moments(x, b, 0.5)
    assert torch.equal(y, torch.add(x, b, alpha=0.5))
    assert my.avg_var == pytest.approx(_stats64(y.contiguous())[1], rel=1e-6)
    assert mb.avg_var == pytest.approx(_stats64(b.contiguous())[1], rel=1e-6)


def test_an_autograd_graph_is_kept_when_needed():
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    y, _, _ = residual_add_moments(x, torch.randn(2, 4, 6, 6), 0.5)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_a_kernel_that_differs_from_torch_add_is_never_used(monkeypatch):
    real = _fused_add._c_residual_add_sums
    calls = []

    def wrong(x, b, y, alpha, outer, c, inner, threads):
        calls.append(alpha)
        return real(x, b, y, alpha * (1 + 1e-3), outer, c, inner, threads)

    monkeypatch.setattr(_fused_add, "_c_residual_add_sums", wrong)
    monkeypatch.setattr(_fused_add, "_kernel_matches_torch", None)
    assert not _fused_add.fused_add_available()
    n_checks = len(calls)
    x, b = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
    y, _, _ = residual_add_moments(x, b, 0.2)
    assert torch.equal(y, torch.add(x, b, alpha=0.2))
    assert len(calls) == n_checks  # the kernel was not called again



def _buffers(shape=(2, 3, 4), dtypes=(torch.float32,) * 3):
    return [torch.zeros(shape, dtype=d) for d in dtypes]


@pytest.mark.parametrize(
    "change,message",
    [
        # one buffer shorter or longer than the sizes say
        (lambda t: t.__setitem__(1, torch.zeros(2, 3, 3)), r"b holds 18 elements, not outer "
         r"\* channels \* inner = 2 \* 3 \* 4"),
        (lambda t: t.__setitem__(2, torch.zeros(2, 3, 5)), "y holds 30 elements"),
        (lambda t: t.__setitem__(0, torch.zeros(1, 3, 4)), "x holds 12 elements"),
        # element types: not float, or differing between the three
        (lambda t: t.__setitem__(0, torch.zeros(2, 3, 4, dtype=torch.float16)),
         "x must hold float32 or float64 values"),
        (lambda t: t.__setitem__(1, torch.zeros(2, 3, 4, dtype=torch.float64)),
         r"b must have the element type of x \(float32\)"),
        (lambda t: t.__setitem__(2, torch.zeros(2, 3, 4, dtype=torch.float64)),
         r"y must have the element type of x \(float32\)"),
        # non-contiguous views
        (lambda t: t.__setitem__(1, torch.zeros(4, 3, 2).transpose(0, 2)),
         "b must be C-contiguous"),
        (lambda t: t.__setitem__(2, torch.zeros(2, 3, 8)[..., ::2]), "y must be C-contiguous"),
    ],
)
def test_the_kernel_checks_its_buffers(change, message):
    tensors = _buffers()
    change(tensors)
    x, b, y = (t.numpy() for t in tensors)
    with pytest.raises(ValueError, match=message):
        _fused_add._c_residual_add_sums(x, b, y, 1.0, 2, 3, 4, 1)


def test_the_buffer_entry_point_writes_only_writable_buffers_and_takes_no_addresses():
    x, b, y = (t.numpy() for t in _buffers())
    y.flags.writeable = False
    with pytest.raises(ValueError, match="y must be writable"):
        _fused_add._c_residual_add_sums(x, b, y, 1.0, 2, 3, 4, 1)
    with pytest.raises(ValueError, match="must be positive"):
        _fused_add._c_residual_add_sums(x, b, y, 1.0, 0, 3, 4, 1)
    x, b, y = _buffers()
    with pytest.raises(TypeError):
        _fused_add._c_residual_add_sums(x.data_ptr(), b.data_ptr(), y.data_ptr(), 1.0, 2, 3, 4, 1)


def test_views_that_the_kernel_cannot_take_go_through_torch():
    # a lazily negated view (its memory holds -b) and a channels-last shortcut
    x, b = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    neg = torch._neg_view(torch.randn(2, 3, 4, 5))  # its memory holds -neg
    assert neg.is_neg() and neg.is_contiguous()
    y, mb, _ = residual_add_moments(x, neg, 0.5)
    assert torch.equal(y, torch.add(x, neg, alpha=0.5))
    assert mb.avg_var == pytest.approx(_stats64(neg.resolve_neg())[1], rel=1e-9)
    cl = x.to(memory_format=torch.channels_last)
    y, _, my = residual_add_moments(cl, b, 0.5)
    assert torch.equal(y, torch.add(cl, b, alpha=0.5))
    assert my.avg_var == pytest.approx(_stats64(y)[1], rel=1e-9)

def test_nonfinite_branch_goes_to_the_exact_path():
    x, b = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    b[1, 2, 3, 4] = math.nan
    b[0, 0, 0, 0] = math.inf
    y, mb, my = residual_add_moments(x, b, 0.2)
    torch.testing.assert_close(y, torch.add(x, b, alpha=0.2), rtol=0, atol=0, equal_nan=True)
    assert mb.nonfinite == 2 and my.nonfinite == 2


def _records(res):
    return [(r.name, r.avg_sq_mean, r.avg_var, r.res_var, r.nonfinite) for r in res.records]


@pytest.mark.parametrize("norm", ["nf", "bn", "none", "gn_ws"])
def test_spp_through_the_residual_add_equals_spp_through_hooks(norm, monkeypatch):
    torch.manual_seed(0)
    model = sp.models.resnetv2([2, 2], norm=norm, stem="cifar", width=0.25)
    x = torch.randn(6, 3, 16, 16)
    fused = sp.spp(model, x)
    monkeypatch.setattr(_spp, "_fusable", lambda block: False)
    hooked = sp.spp(model, x)
    assert fused.meta.pop("path") == "c-hooks+fused" and hooked.meta.pop("path") == "c-hooks"
    assert fused.meta == hooked.meta
    for a, b in zip(_records(fused), _records(hooked), strict=True):
        assert a[0] == b[0] and a[4] == b[4]
        for u, v in zip(a[1:4], b[1:4]):
            assert (u is None) == (v is None)
            if u is not None:
                assert u == pytest.approx(v, rel=1e-6)


def test_probes_are_attached_only_where_the_add_sees_the_tapped_branch():
    nf = sp.models.resnetv2([2], norm="nf", stem="cifar", width=0.25)
    gated = sp.models.resnetv2([2], norm="nf", stem="cifar", width=0.25, skipinit=True)
    blocks = [b for b in resolve_blocks(nf, None).blocks if isinstance(b.module, ResidualBlock)]
    assert blocks and all(_spp._fusable(b) for b in blocks)
    assert not any(_spp._fusable(b) for b in resolve_blocks(gated, None).blocks
                   if isinstance(b.module, ResidualBlock))


def test_model_output_is_unchanged_and_no_probe_is_left_behind():
    torch.manual_seed(0)
    model = sp.models.resnetv2([2, 1], norm="nf", stem="cifar", width=0.25)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        plain = model(x)
    seen = []

    def record_output(mod, args, out):
        seen.append(out.clone())

    h = model.register_forward_hook(record_output)
    sp.spp(model, x)
    h.remove()
    assert torch.equal(seen[0], plain)
    assert not any("residual_add" in m.__dict__ for m in model.modules())
    with pytest.raises(sp.measure.ForwardError):
        sp.spp(model, torch.randn(4, 5, 16, 16))  # wrong channel count
    assert not any("residual_add" in m.__dict__ for m in model.modules())


def test_the_kernel_does_not_depend_on_thread_timing():
    x, b = torch.randn(8, 64, 12, 12), torch.randn(8, 64, 12, 12)  # by rows, over 4 threads

    def run():
        y = torch.empty_like(x)
        return _fused_add._c_residual_add_sums(x.numpy(), b.numpy(), y.numpy(), 0.3, 8, 64, 144, 4)

    first = run()
    assert all(run() == first for _ in range(50))


@pytest.mark.parametrize("shape", [(8, 64, 16, 16), (3, 5, 70), (8, 256, 4, 4), (300, 24, 1),
                                   (1, 4096, 9)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_address_entry_point_equals_the_checked_buffer_one(shape, dtype, threads):
    # fused_sums hands the kernel addresses (checked in Python right before the call);
    # the same kernel through checked buffers must give the same y and the same sums.
    threads(2)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    b = torch.randn(shape, generator=gen, dtype=dtype)
    y, n, c, sums = _fused_add.fused_sums(x, b, 0.3)
    outer, c_ref, inner = shape[0], shape[1], math.prod(shape[2:])
    y_buf = torch.empty_like(x)
    sums_buf = _fused_add._c_residual_add_sums(x.numpy(), b.numpy(), y_buf.numpy(), 0.3,
                                               outer, c_ref, inner, 2)
    assert (n, c) == (outer * inner, c_ref)
    assert torch.equal(y, y_buf) and torch.equal(y, torch.add(x, b, alpha=0.3))
    assert sums == sums_buf


def test_the_address_entry_point_refuses_empty_sizes_and_null_addresses():
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="positive"):
        _fused_add._c_residual_add_sums_at(x.data_ptr(), x.data_ptr(), x.data_ptr(), False,
                                           1.0, 0, 3, 4, 1)
    with pytest.raises(ValueError, match="non-zero"):
        _fused_add._c_residual_add_sums_at(0, x.data_ptr(), x.data_ptr(), False, 1.0, 2, 3,
                                           4, 1)


def test_fused_sums_declines_what_the_kernel_cannot_take():
    x = torch.randn(2, 3, 4, 5)
    assert _fused_add.fused_sums(x, x.transpose(2, 3).contiguous().transpose(2, 3), 1.0) is None
    assert _fused_add.fused_sums(x, x.double(), 1.0) is None
    assert _fused_add.fused_sums(x.half(), x.half(), 1.0) is None
    assert _fused_add.fused_sums(x, x[:, :, :1], 1.0) is None
    assert _fused_add.fused_sums(x.requires_grad_(), torch.randn(2, 3, 4, 5), 1.0) is None
    with torch.no_grad():  # no graph to record: the kernel takes a leaf that requires grad
        assert _fused_add.fused_sums(x, torch.randn(2, 3, 4, 5), 1.0) is not None


def test_the_probe_takes_the_exact_path_where_the_sums_cannot_be_used(monkeypatch):
    # A branch output with a huge common offset (mean^2 / var far above 100: the fast sums
    # lose the variance) and, in another block, an infinite value: the probe re-reads
    # those tensors exactly, and spp() equals spp() through forward hooks.
    torch.manual_seed(0)
    model = sp.models.resnetv2([2, 2], norm="nf", stem="cifar", width=0.25)
    x = torch.randn(6, 3, 16, 16)

    def shift(mod, args, out):
        return out + 1e4

    def poison(mod, args, out):
        out = out.clone()
        out[0, 0, 0, 0] = math.inf
        return out

    blocks = [b for b in model.modules() if isinstance(b, ResidualBlock)]
    h1 = blocks[1].branch_tap.register_forward_hook(shift)
    h2 = blocks[3].branch_tap.register_forward_hook(poison)
    try:
        fused = sp.spp(model, x)
        monkeypatch.setattr(_spp, "_fusable", lambda block: False)
        hooked = sp.spp(model, x)
    finally:
        h1.remove()
        h2.remove()
    assert fused.meta["path"] == "c-hooks+fused"
    for a, b in zip(_records(fused), _records(hooked), strict=True):
        assert a[0] == b[0] and a[4] == b[4]
        for u, v in zip(a[1:4], b[1:4]):
            assert (u is None) == (v is None)
            if u is not None and math.isfinite(v):
                assert u == pytest.approx(v, rel=1e-6)
    shifted = fused.records[2]  # blocks[1] (after the stem): both sides read it exactly
    assert shifted.avg_sq_mean > 1e6  # (alpha * 1e4)^2: the fast sums cannot be used
    assert shifted.avg_var == pytest.approx(hooked.records[2].avg_var, rel=1e-12)
    assert fused.records[4].nonfinite > 0  # blocks[3]
