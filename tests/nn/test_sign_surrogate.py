"""sign_surrogate: its backward against autograd through the surrogate formulas written
independently, and against the theory's derivative table."""

import numpy as np
import pytest
import torch

from signalprop.nn import functional as SF
from signalprop.nn import sign_surrogate
from signalprop.theory.quantized import surrogate_derivative


def _reste_forward(x, o, t=1.5, m=0.1):
    """The rectified ReSTE forward whose derivative the backward uses: linear through the
    origin to (m, m^(1/o)), the power function up to t, constant beyond."""
    ax = x.abs()
    inner = x * m ** (1 / o - 1)
    power = torch.sign(x) * ax.clamp(min=1e-30) ** (1 / o)
    flat = torch.sign(x) * torch.tensor(t ** (1 / o), dtype=x.dtype)
    return torch.where(ax <= m, inner, torch.where(ax <= t, power, flat))


FORWARDS = {
    ("ste", ()): lambda x: x,
    ("clipped", ()): lambda x: x.clamp(-1, 1),
    ("clipped", (("limit", 0.3),)): lambda x: x.clamp(-0.3, 0.3),
    ("tanh", ()): torch.tanh,
    ("tanh", (("beta", 2.5),)): lambda x: torch.tanh(2.5 * x),
    ("reste", (("o", 1.0),)): lambda x: _reste_forward(x, 1.0),
    ("reste", (("o", 2.0),)): lambda x: _reste_forward(x, 2.0),
    ("reste", (("o", 3.0),)): lambda x: _reste_forward(x, 3.0),
}


@pytest.mark.parametrize("key", list(FORWARDS), ids=lambda k: f"{k[0]}{dict(k[1])}")
def test_backward_is_autograd_of_the_surrogate(key):
    name, params = key
    x = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    x = x[(x.abs() - 1).abs() > 1e-9]  # kinks of the clipped ones: one-sided derivatives
    x = x[(x.abs() - 1.5).abs() > 1e-9]
    x = x[(x.abs() - 0.3).abs() > 1e-9]
    x = x[(x.abs() - 0.1).abs() > 1e-9]
    upstream = torch.randn_like(x)
    a = x.clone().requires_grad_(True)
    y = sign_surrogate(a, name, **dict(params))
    assert torch.equal(y, torch.where(x >= 0, 1.0, -1.0).to(x.dtype))
    (y * upstream).sum().backward()
    b = x.clone().requires_grad_(True)
    (FORWARDS[key](b) * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.grad / upstream,
                               surrogate_derivative(name, x.numpy(), **dict(params)),
                               rtol=1e-10, atol=1e-12)


def test_float32_and_functional_alias():
    x = torch.randn(100, requires_grad=True)
    SF.sign_surrogate(x, "reste", o=3.0).sum().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    assert SF.sign_surrogate is sign_surrogate


def test_gradcheck_of_smooth_surrogate_pieces():
    # away from the kinks the backward is the derivative of a smooth function: compare the
    # STE-style "sign(x) - g(x) detached + g(x)" construction against finite differences
    x = torch.tensor([0.2, 0.7, -0.9], dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(sign_surrogate(x, "tanh", beta=1.3).sum(), x)[0]
    h = 1e-6
    fd = (torch.tanh(1.3 * (x.detach() + h)) - torch.tanh(1.3 * (x.detach() - h))) / (2 * h)
    torch.testing.assert_close(g, fd, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("call, match", [
    (lambda x: sign_surrogate(x, "hardtanh"), "unknown estimator 'hardtanh'; valid: ste"),
    (lambda x: sign_surrogate(x, "ste", limit=1.0), "takes no parameter"),
    (lambda x: sign_surrogate(x, "reste", t=-1.0), "t must be > 0"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(2))
