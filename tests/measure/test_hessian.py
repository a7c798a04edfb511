"""hessian_extremes(): against a dense Hessian and its eigendecomposition on small models."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import ForwardError, NonFiniteError

CE = nn.CrossEntropyLoss()


def dense_eigvals(model, loss_fn, x, y):
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [model.get_parameter(n) for n in names]
    sizes = [p.numel() for p in params]

    def loss(flat):
        chunks = torch.split(flat, sizes)
        p = {n: c.view_as(q) for n, c, q in zip(names, chunks, params)}
        return loss_fn(torch.func.functional_call(model, p, (x,)), y)

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    return torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat)).numpy()


def small_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def test_exact_with_as_many_steps_as_parameters():
    model = small_mlp()
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    ev = dense_eigvals(model, CE, x, y)
    h = sp.hessian_extremes(model, x, y, loss_fn=CE, k=3, steps=ev.size)
    assert h.dim == ev.size == 43 and h.steps == 43
    np.testing.assert_allclose(h.largest, ev[::-1][:3], atol=1e-10)
    np.testing.assert_allclose(h.smallest, ev[:3], atol=1e-10)
    assert h.smallest[0] < 0 < h.largest[0]  # an indefinite Hessian away from a minimum
    assert h.loss == pytest.approx(float(CE(model(x), y).detach()), rel=1e-12)
    assert all(p.grad is None for p in model.parameters())


def test_partial_run_is_within_its_residual_bounds():
    model = small_mlp()
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    ev = dense_eigvals(model, CE, x, y)
    h = sp.hessian_extremes(model, x, y, loss_fn=CE, k=2, steps=15, seed=1)
    assert h.steps == 16 and h.block == 2 and not h.complete  # whole blocks of k = 2
    for val, res in zip(h.largest + h.smallest, h.largest_residual + h.smallest_residual):
        assert np.abs(ev - val).min() <= res + 1e-10
    assert h.largest[0] == pytest.approx(ev[-1], abs=max(h.largest_residual[0], 1e-8))


def test_batchnorm_in_train_mode_and_buffers_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randint(0, 2, (8,))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    h = sp.hessian_extremes(model, x, y, loss_fn=CE, k=1, steps=34)  # 16 + 8 + 10 parameters
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    ev = dense_eigvals(model, CE, x, y)  # train mode: batch statistics, as above
    assert ev.size == h.dim == 34
    np.testing.assert_allclose(h.largest + h.smallest, [ev[-1], ev[0]], atol=1e-10)


def test_bad_input_and_nonfinite():
    model = nn.Linear(3, 2)
    x, y = torch.randn(4, 3), torch.randint(0, 2, (4,))
    with pytest.raises(ValueError, match="loss_fn must return a scalar, got"):
        sp.hessian_extremes(model, x, y, loss_fn=nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(ValueError, match="x is an empty batch"):
        sp.hessian_extremes(model, torch.randn(0, 3), y[:0], loss_fn=CE)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        sp.hessian_extremes(model, x, y, loss_fn=CE, k=0)
    with pytest.raises(ForwardError, match="forward failed in module"):
        sp.hessian_extremes(model, torch.randn(4, 5), y, loss_fn=CE)
    frozen = nn.Linear(3, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        sp.hessian_extremes(frozen, x, y, loss_fn=CE)
    with torch.no_grad():
        model.bias.fill_(math.nan)
    with pytest.raises(NonFiniteError, match=r"first non-finite in module '<model>' \(Linear\)"):
        sp.hessian_extremes(model, x, y, loss_fn=CE)
