"""The C PH composition (``_cphm.c`` through ``hypercomplex._fused``) against independent
computations: the torch.kron loop and autograd through it (float64, every kernel variant,
every size branch), float32 against the float64 values, two threads against one, and the
fallbacks (forward AD, torch.func, torch-function modes, double backward, layouts the
kernel does not read, a kernel that fails its check)."""

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from signalprop.nn import PHConv2d, PHMLinear, compose_weight
from signalprop.nn.hypercomplex import _fused

# (n, out / n, in / n, *taps): n below, at and above the kernel's groups of 4 terms;
# filter rows L = in / n * taps with vector groups, single vectors and scalar tails
SHAPES = [(1, 3, 5), (2, 4, 17), (3, 2, 70, 3), (4, 5, 64), (4, 3, 81), (5, 2, 16, 3, 3),
          (8, 2, 9)]


def kron_loop(a, f):
    """sum_s kron(A_s, F_s) on the channel axes, tap by tap, with torch.kron."""
    n = a.shape[0]
    flat_f = f.reshape(n, f.shape[1], f.shape[2], -1)
    w = torch.zeros(n * f.shape[1], n * f.shape[2], flat_f.shape[-1], dtype=f.dtype)
    for t in range(flat_f.shape[-1]):
        for s in range(n):
            w[:, :, t] += torch.kron(a[s], flat_f[s, :, :, t])
    return w.reshape(n * f.shape[1], n * f.shape[2], *f.shape[3:])


def _factors(shape, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = shape[0]
    a = torch.randn(n, n, n, dtype=dtype, generator=gen).requires_grad_()
    f = torch.randn(*shape, dtype=dtype, generator=gen).requires_grad_()
    g = torch.randn(n * shape[1], n * shape[2], *shape[3:], dtype=dtype, generator=gen)
    return a, f, g


def _variants():
    best = _fused.set_variant(-1)
    return list(range(best + 1))


@pytest.fixture
def variant(request):
    got = _fused.set_variant(request.param)
    yield got
    _fused.set_variant(-1)


def test_kernel_is_built_and_passes_its_check():
    assert _fused.kernel_available()
    a, f, _ = _factors((4, 3, 8), torch.float32)
    assert _fused.handles(a, f)
    assert compose_weight(a, f).grad_fn.__class__.__name__ == "_ComposeBackward"


@pytest.mark.parametrize("variant", _variants(), indirect=True)
@pytest.mark.parametrize("shape", SHAPES)
def test_float64_value_and_gradients_equal_the_kronecker_loop(variant, shape):
    a, f, g = _factors(shape)
    w = compose_weight(a, f)
    torch.testing.assert_close(w, kron_loop(a, f), rtol=1e-13, atol=1e-13)
    da, df = torch.autograd.grad(w, (a, f), g)
    ea, ef = torch.autograd.grad(kron_loop(a, f), (a, f), g)
    torch.testing.assert_close(da, ea, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(df, ef, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", _variants(), indirect=True)
@pytest.mark.parametrize("shape", [(4, 128, 128), (3, 7, 70, 3), (2, 16, 40)])
def test_float32_is_within_float32_rounding_of_the_float64_values(variant, shape):
    a, f, g = _factors(shape, torch.float32, seed=1)
    da, df = torch.autograd.grad(w := compose_weight(a, f), (a, f), g)
    a64, f64 = a.detach().double().requires_grad_(), f.detach().double().requires_grad_()
    w64 = kron_loop(a64, f64)
    ea, ef = torch.autograd.grad(w64, (a64, f64), g.double())
    eps = torch.finfo(torch.float32).eps
    n = shape[0]
    # each W entry: n products of unit-variance factors; each dF entry n^2 terms; each dA
    # entry R * L terms: bounds of a few eps times the sum of absolute terms
    assert (w.double() - w64).abs().max() <= 4 * n * eps * kron_loop(a64.abs(), f64.abs()).max()
    abs_a, abs_f = a64.detach().abs().requires_grad_(), f64.detach().abs().requires_grad_()
    abs_da, abs_df = torch.autograd.grad(kron_loop(abs_a, abs_f), (abs_a, abs_f),
                                         g.double().abs())
    assert ((df.double() - ef).abs() <= 4 * n * n * eps * abs_df).all()
    terms = f[0, 0].numel()  # per-lane float runs: 8 rows x L / lanes <= L terms; then double
    assert ((da.double() - ea).abs() <= 2 * terms * eps * abs_da).all()


def test_two_threads_equal_one():
    a, f, g = _factors((4, 128, 128), torch.float32, seed=2)  # above the serial threshold
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        w1 = compose_weight(a, f)
        da1, df1 = torch.autograd.grad(w1, (a, f), g)
        torch.set_num_threads(2)
        w2 = compose_weight(a, f)
        da2, df2 = torch.autograd.grad(w2, (a, f), g)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(w1, w2) and torch.equal(df1, df2)  # same sums per element
    torch.testing.assert_close(da2, da1, rtol=1e-6, atol=1e-6)  # double sums regrouped


def test_non_finite_values_propagate_as_in_the_torch_ops():
    for n in (2, 4, 5):
        a, f, g = _factors((n, 3, 6))
        with torch.no_grad():
            a[0, 1, 0] = 0.0
            f[0, 1, 2], f[1, 2, 5] = float("inf"), float("nan")
        got, want = compose_weight(a, f), _fused.compose_torch(a, f)
        torch.testing.assert_close(got, want, equal_nan=True)
        da, df = torch.autograd.grad(got, (a, f), g)
        ea, ef = _fused.grads_torch(a, f, g)
        torch.testing.assert_close(da, ea, equal_nan=True)
        torch.testing.assert_close(df, ef, equal_nan=True)


def test_a_non_contiguous_weight_gradient_is_read_correctly():
    a, f, g = _factors((4, 3, 5))
    g_t = g.T.contiguous().T  # same values, column-major
    da, df = torch.autograd.grad(compose_weight(a, f), (a, f), g_t)
    ea, ef = torch.autograd.grad(kron_loop(a, f), (a, f), g)
    torch.testing.assert_close(da, ea)
    torch.testing.assert_close(df, ef)


def test_only_the_wanted_gradient_is_returned():
    a, f, g = _factors((3, 2, 5))
    frozen = a.detach()
    w = compose_weight(frozen, f)
    (df,) = torch.autograd.grad(w, (f,), g)
    torch.testing.assert_close(df, torch.autograd.grad(kron_loop(frozen, f), f, g)[0])


def test_double_backward_takes_the_torch_ops():
    a, f, _ = _factors((3, 2, 5))
    assert torch.autograd.gradgradcheck(compose_weight, (a, f))


def test_an_in_place_change_before_backward_is_caught():
    a, f, g = _factors((3, 2, 5))
    w = compose_weight(a, f)
    with torch.no_grad():
        f.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.backward(g)


def test_layouts_and_modes_the_kernel_does_not_read_take_the_torch_ops():
    a, f, _ = _factors((4, 3, 6))
    assert not _fused.handles(a, f.transpose(1, 2))
    assert not _fused.handles(a.half(), f.half())
    assert not _fused.handles(a.float(), f)
    n = _fused.MAX_N + 1  # beyond the kernel's scratch limit: torch ops, same values
    big_a, big_f = torch.randn(n, n, n, dtype=torch.float64), torch.randn(n, 1, 1,
                                                                          dtype=torch.float64)
    assert not _fused.handles(big_a, big_f)
    assert _fused.handles(big_a[:-1, :-1, :-1].contiguous(), big_f[:-1])  # n = MAX_N
    torch.testing.assert_close(compose_weight(big_a, big_f), kron_loop(big_a, big_f))

    class Recorder(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.calls.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    with Recorder() as rec:
        w = compose_weight(a, f)
    assert "mm" in rec.calls  # the recorder sees the ops, not an opaque kernel
    torch.testing.assert_close(w, kron_loop(a, f))


# torch's forward AD loads its decompositions through torch.jit.script on first use
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_forward_ad_and_torch_func_get_correct_derivatives():
    a, f, _ = _factors((3, 2, 5))
    a, f = a.detach(), f.detach()
    da, df = torch.randn_like(a), torch.randn_like(f)
    _, tangent = torch.func.jvp(compose_weight, (a, f), (da, df))
    torch.testing.assert_close(tangent, kron_loop(da, f) + kron_loop(a, df))
    jac = torch.func.jacrev(compose_weight, argnums=1)(a, f)
    want = torch.autograd.functional.jacobian(lambda t: kron_loop(a, t), f)
    torch.testing.assert_close(jac, want)
    batched = torch.func.vmap(compose_weight, in_dims=(None, 0))(a, torch.stack([f, 2 * f]))
    torch.testing.assert_close(batched[1], 2 * kron_loop(a, f))


def test_a_kernel_failing_its_check_is_not_used(monkeypatch):
    # a forward off by 1e-9 (relative) in one entry
    monkeypatch.setattr(_fused, "_checked", None)
    monkeypatch.setattr(_fused, "_compose_c", _off_by_one(_fused._compose_c))
    with pytest.warns(RuntimeWarning, match="failed its check"):
        assert not _fused.kernel_available()
    a, f, _ = _factors((3, 2, 5))
    assert not _fused.handles(a, f)
    assert compose_weight(a, f).grad_fn.__class__.__name__ != "_ComposeBackward"


def _off_by_one(compose_c):
    def wrong(a, f):
        w = compose_c(a, f)
        w.view(-1)[0] *= 1 + 1e-9
        return w
    return wrong


def test_layers_train_through_the_kernel_like_the_float64_reference():
    torch.manual_seed(3)
    lin = PHMLinear(16, 12, n=4)
    conv = PHConv2d(8, 4, 3, n=4, padding=1)
    x, xc = torch.randn(5, 16), torch.randn(2, 8, 6, 6)
    (lin(x).square().sum() + conv(xc).square().sum()).backward()
    for layer, inp, op in ((lin, x, lambda z, w, b: F.linear(z, w, b)),
                           (conv, xc, lambda z, w, b: F.conv2d(z, w, b, padding=1))):
        a, f = layer.A.detach().double().requires_grad_(), layer.F.detach().double().requires_grad_()
        out = op(inp.double(), kron_loop(a, f), layer.bias.detach().double())
        ga, gf = torch.autograd.grad(out.square().sum(), (a, f))
        torch.testing.assert_close(layer.A.grad.double(), ga, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.F.grad.double(), gf, rtol=1e-4, atol=1e-5)
