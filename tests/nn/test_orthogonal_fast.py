"""OrthoConv2d's fast paths (Cayley: systems built from the taps, solved with the batch as
right-hand sides; BCOP: one conv2d of the space-to-depth input; both with a frozen
operator cached without gradients) against the reference path: the layer's orthogonal
matrices from ``frequency_matrices`` (Cayley: the kernel's FFT on the whole grid and the
explicit Cayley matrices; BCOP: the FFT of the composed kernel folded back to a strided
one) applied frequency by frequency."""

import pytest
import torch

from signalprop.nn import OrthoConv2d

F64 = torch.float64


def reference(layer: OrthoConv2d, x: torch.Tensor) -> torch.Tensor:
    """The layer written the slow, direct way (Q from ``frequency_matrices``)."""
    b, c, h, w = x.shape
    (sh, sw), g = layer.stride, layer.groups
    q, _ = layer.frequency_matrices((h, w))  # (G, F, Mg, Cg')
    xp = x.reshape(b, c, h // sh, sh, w // sw, sw).permute(0, 1, 3, 5, 2, 4)
    spec = torch.fft.rfft2(xp.reshape(b, c * sh * sw, h // sh, w // sw))
    n2 = spec.shape[-1]
    spec = spec.reshape(b, g, -1, spec.shape[-2] * n2).permute(1, 3, 2, 0)  # (G, F, Cg', B)
    out = (q.to(spec.dtype) @ spec).permute(3, 0, 2, 1)  # (B, G, Mg, F)
    out = out.reshape(b, layer.out_channels, h // sh, n2)
    y = torch.fft.irfft2(out, s=(h // sh, w // sw))
    return y if layer.bias is None else y + layer.bias.reshape(1, -1, 1, 1)


CASES = [  # (OrthoConv2d args, input shape): square, tall, wide, strided, grouped, dilated,
    # non-square kernels and inputs, 1 x 1 and kernel = stride (a constant spectrum)
    ((4, 4, 3), (4, 6, 6)), ((4, 16, 3, 2), (4, 8, 8)), ((4, 8, 3, 2), (4, 8, 6)),
    ((8, 4, 3), (8, 5, 5)), ((3, 5, 3), (3, 7, 7)), ((2, 4, (3, 1), 1), (2, 5, 3)),
    ((4, 6, 3, (2, 1), "same", (1, 2), 2), (4, 8, 6)), ((6, 6, 5, 1, "same", 1, 3), (6, 7, 8)),
    ((4, 4, 1), (4, 5, 5)), ((8, 4, 1), (8, 3, 3)), ((4, 16, 2, 2), (4, 6, 6)),
    ((4, 8, 1, 1, "same", 1, 2), (4, 4, 4))]


@pytest.mark.parametrize("construction", ["bcop", "cayley"])
@pytest.mark.parametrize("args,shape", CASES)
def test_fast_path_equals_the_reference_with_gradients(args, shape, construction):
    torch.manual_seed(0)
    layer = OrthoConv2d(*args, dtype=F64, construction=construction)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, *shape, dtype=F64, requires_grad=True)
    y, ref = layer(x), reference(layer, x)
    assert torch.allclose(y, ref, rtol=0, atol=1e-12)
    gy = torch.randn_like(y)
    params = (x, *layer.parameters())
    grads = torch.autograd.grad(y, params, gy)
    refs = torch.autograd.grad(ref, params, gy)
    for a, b in zip(grads, refs):
        assert torch.allclose(a, b, rtol=0, atol=1e-11 * max(1.0, float(b.abs().max())))
    with torch.no_grad():  # the cached frozen operator
        assert torch.allclose(layer(x), ref, rtol=0, atol=1e-12)


def test_gradcheck_on_small_bcop_layers():
    for args in ((2, 8, 3, 2), (3, 2, 3), (2, 3, (3, 2))):
        layer = OrthoConv2d(*args, dtype=F64, bias=False)
        names = [n for n, _ in layer.named_parameters()]
        x = torch.randn(2, args[0], 4, 4, dtype=F64, requires_grad=True)

        def run(v, *ps, layer=layer, names=names):
            return torch.func.functional_call(layer, dict(zip(names, ps)), (v,))
        params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
        assert torch.autograd.gradcheck(run, (x, *params))
        assert torch.autograd.gradgradcheck(run, (x, *params))


def test_gradcheck_on_a_small_strided_layer():
    layer = OrthoConv2d(2, 8, 3, stride=2, dtype=F64, construction="cayley")
    x = torch.randn(2, 2, 4, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, w: torch.func.functional_call(
        layer, {"weight": w, "bias": layer.bias}, (v,)), (x, layer.weight.detach().clone()
                                                          .requires_grad_(True)))


@pytest.mark.parametrize("construction", ["bcop", "cayley"])
def test_frozen_operator_follows_the_weights_and_is_usable_with_autograd(construction):
    torch.manual_seed(1)
    layer = OrthoConv2d(4, 4, 3, dtype=F64, construction=construction)
    x = torch.randn(2, 4, 6, 6, dtype=F64)
    with torch.no_grad():
        before = layer(x)
        assert layer._operator_cache is not None
        assert torch.equal(layer(x), before)  # served from the cache
    layer(x)[:, 0].sum().backward()  # not a norm: an orthogonal map keeps those
    first = next(p for p in layer.parameters() if p.grad is not None and p is not layer.bias)
    with torch.no_grad():  # an in-place update (as an optimizer's): the cache is stale
        first.sub_(0.5 * first.grad)
    with torch.no_grad():
        after = layer(x)
    assert not torch.allclose(after, before)
    assert torch.allclose(after, reference(layer, x), atol=1e-12)
    with torch.inference_mode():
        layer(x + 1)  # cached under inference mode, still usable outside it
    layer.requires_grad_(False)  # frozen layer, input gradient through the cache
    v = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(layer(v).square().sum(), v)
    (g_ref,) = torch.autograd.grad(reference(layer, v).square().sum(), v)
    assert torch.allclose(g, g_ref, atol=1e-11)


def test_second_derivatives_through_the_solve():
    # Hessian-vector products (e.g. signalprop's Hessian measurements) differentiate the
    # backward again: the custom solve backward must stay differentiable under create_graph
    layer = OrthoConv2d(2, 8, 3, stride=2, dtype=F64, construction="cayley")
    x = torch.randn(2, 2, 4, 4, dtype=F64, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda v, k: torch.func.functional_call(
        layer, {"weight": k, "bias": layer.bias}, (v,)), (x, w))
