"""GammaAct and the torch activation map agree with the theory registry."""

import math

import numpy as np
import pytest
import torch

from signalprop import theory
from signalprop.nn import GammaAct, SkipInit, torch_activation

NAMES = [n for n in theory.activation_names() if n not in ("swish", "linear")]


@pytest.mark.parametrize("name", NAMES)
def test_torch_function_matches_theory_function(name):
    x = np.linspace(-7, 8, 301)
    got = torch_activation(name)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, theory.get_activation(name).fn(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gamma_act_has_unit_variance_on_gaussian_input(name):
    n = 400_000
    z = torch.randn(n, dtype=torch.float64)
    act = GammaAct(name)
    y = act(z)
    # SE of a sample variance is sqrt((m4 - s^4) / n); bound m4 by the sample's own.
    m4 = ((y - y.mean()) ** 4).mean().item()
    se = math.sqrt(max(m4 - 1.0, 1e-12) / n)
    assert abs(y.var().item() - 1.0) < 5 * se, (name, y.var().item(), se)


def test_parameterised_and_callable_activations():
    act = GammaAct("leaky_relu", negative_slope=0.2)
    assert act.gamma == pytest.approx(theory.gamma("leaky_relu", negative_slope=0.2))
    x = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(act(x), torch.tensor([-0.2, 2.0]) * act.gamma)
    custom = GammaAct(torch.nn.functional.silu)  # quadrature through NumPy, no warning
    assert custom.gamma == pytest.approx(theory.gamma("silu"), rel=1e-9)
    assert GammaAct("relu", gamma=2.0)(torch.tensor([1.0])).item() == 2.0
    assert "leaky_relu" in repr(act) and "gamma=" in repr(act)


def test_bad_activation_names_list_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'rleu'.*relu"):
        GammaAct("rleu")
    with pytest.raises(ValueError, match="bad parameters"):
        GammaAct("relu", negative_slope=0.1)


def test_skipinit_scales_and_learns():
    gate = SkipInit(0.0)
    x = torch.randn(4, 3)
    assert torch.all(gate(x) == 0)
    gate(x).sum().backward()
    torch.testing.assert_close(gate.gain.grad, x.sum())
    gate2 = SkipInit(0.5)
    torch.testing.assert_close(gate2(x), 0.5 * x)
    with torch.no_grad():
        gate2.gain.fill_(3.0)
    gate2.reset_parameters()
    assert gate2.gain.item() == 0.5
