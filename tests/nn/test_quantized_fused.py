"""The binary weight quantizer's C path (``_cquant.c``) against its torch path and against
float64 sums: forward, gradient, the scale's accuracy, fallbacks, thread independence."""

import pytest
import torch
import torch.nn.functional as F

from signalprop.nn import QuantConv2d, QuantLinear, WeightQuantizer
from signalprop.nn.quantized import _fused


def test_the_c_accelerator_is_built():
    # `pip install -e .` compiles src/signalprop/nn/quantized/_cquant.c; without a C
    # compiler the install still works (torch ops), but this suite must exercise the C path.
    assert _fused.fused_available(), "signalprop.nn.quantized._cquant is not built"


def _torch_path(monkeypatch):
    monkeypatch.setattr(_fused, "_cquant", None)


def _run(layer, x):
    layer.zero_grad(set_to_none=True)
    y = layer(x)
    y.square().sum().backward()
    return layer.quantized_weight().detach(), y.detach(), layer.weight.grad.clone()


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("estimator, params", [("ste", {}), ("clipped", {"limit": 0.05})])
@pytest.mark.parametrize("scale", ["mean_abs", "rms"])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("conv", [False, True])
def test_c_path_matches_the_torch_path(monkeypatch, dtype, tol, estimator, params, scale,
                                       per_channel, conv):
    torch.manual_seed(0)
    kw = dict(scale=scale, estimator=estimator, estimator_params=params,
              per_channel=per_channel, dtype=dtype)
    layer = QuantConv2d(6, 8, 3, padding=1, **kw) if conv else QuantLinear(40, 12, **kw)
    x = torch.randn((3, 6, 7, 7) if conv else (9, 40), dtype=dtype)
    assert _fused.handles(layer.weight, estimator, scale)
    fused = _run(layer, x)
    _torch_path(monkeypatch)
    assert not _fused.handles(layer.weight, estimator, scale)
    reference = _run(layer, x)
    for a, b in zip(fused, reference):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_scale_is_summed_more_accurately_than_the_float_norm():
    """alpha = mean|w| of 512 x 512 float32 weights against the float64 sum: the kernel
    folds float runs into doubles (error ~1e-8 here); a float32 norm loses ~1e-5."""
    torch.manual_seed(1)
    w = torch.rand(512, 512) + 0.5  # all of one sign: no cancellation to hide the error
    _, alpha = _fused.binary_forward(w, "mean_abs", True)
    exact = w.double().abs().mean().item()
    assert abs(alpha.item() - exact) / exact < 1e-7
    _, rms = _fused.binary_forward(w, "rms", True)
    exact_rms = w.double().square().mean().sqrt().item()
    assert abs(rms.item() - exact_rms) / exact_rms < 1e-7


def test_thread_count_does_not_change_the_results():
    torch.manual_seed(2)
    w = torch.randn(512, 300)  # above the kernel's serial threshold
    g = torch.randn(512, 300)
    threads = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            q, alpha = _fused.binary_forward(w, "mean_abs", False)
            with torch.no_grad():
                grad = _fused.binary_backward(g, w, alpha, "mean_abs", "ste", {})
            out.append((q, alpha, grad))
    finally:
        torch.set_num_threads(threads)
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert torch.equal(a, b)


def test_fallbacks_non_contiguous_and_double_backward(monkeypatch):
    torch.manual_seed(3)
    q = WeightQuantizer("binary", "rms")
    w = torch.randn(16, 24, dtype=torch.float64).t().requires_grad_(True)  # non-contiguous
    assert not _fused.handles(w, "ste", "rms")
    (q(w) * torch.arange(384.0, dtype=w.dtype).reshape(24, 16)).sum().backward()
    wc = w.detach().contiguous().requires_grad_(True)
    (q(wc) * torch.arange(384.0, dtype=w.dtype).reshape(24, 16)).sum().backward()
    torch.testing.assert_close(w.grad, wc.grad)
    # create_graph=True: the quantizer's backward is recorded in torch ops (a graph that
    # the second derivative, here through x, goes back through)
    x = torch.randn(5, 16, dtype=torch.float64, requires_grad=True)

    def second() -> torch.Tensor:
        (gw,) = torch.autograd.grad(F.linear(x, q(wc)).square().sum(), wc, create_graph=True)
        return torch.autograd.grad(gw.square().sum(), x)[0]

    fused = second()
    _torch_path(monkeypatch)
    torch.testing.assert_close(fused, second())


@pytest.mark.parametrize("scale", ["mean_abs", "rms"])
def test_all_zero_weights_give_finite_gradients(monkeypatch, scale):
    layer = QuantLinear(6, 3, scale=scale)
    with torch.no_grad():
        layer.weight.zero_()
    x = torch.randn(4, 6)
    fused = _run(layer, x)
    assert all(torch.isfinite(t).all() for t in fused)
    _torch_path(monkeypatch)
    for a, b in zip(fused, _run(layer, x)):
        torch.testing.assert_close(a, b)


def test_kernel_refuses_mismatched_buffers():
    from signalprop.nn.quantized import _cquant

    w, q = torch.randn(4, 6), torch.empty(4, 6)
    alpha = torch.empty(())
    with pytest.raises(ValueError, match="q has the wrong number of elements"):
        _cquant.binary_forward(w.numpy(), torch.empty(5).numpy(), alpha.numpy(), 1, 1, 1)
    with pytest.raises(ValueError, match="outer must divide"):
        _cquant.binary_forward(w.numpy(), q.numpy(), torch.empty(5).numpy(), 5, 1, 1)
    with pytest.raises(ValueError, match="one element type"):
        _cquant.binary_forward(w.numpy(), q.double().numpy(), alpha.numpy(), 1, 1, 1)
    with pytest.raises(ValueError, match="float32 or float64"):
        _cquant.binary_forward(w.int().numpy(), q.numpy(), alpha.numpy(), 1, 1, 1)
