"""gradient_spp(): statistics against a manual autograd run, the chi overlay, bad input."""

import math

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.results import chi_prediction

from .conftest import hand_residual_cnn

BLOCKS = ["1", "2", "3", "4", "5"]


def stats64(g):
    x = g.double()
    dims = [0, *range(2, x.dim())]
    return (x.mean(dims) ** 2).mean().item(), x.var(dims, unbiased=False).mean().item()


def manual(model, x, loss_of):
    """Block output gradients (retain_grad) and parameter gradients from .backward()."""
    outs = {}

    def keep(name):
        def hook(m, a, o):
            o.retain_grad()
            outs[name] = o

        return hook

    hs = [model.get_submodule(n).register_forward_hook(keep(n)) for n in BLOCKS]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.zero_grad(set_to_none=True)
    loss_of(model(x)).backward()
    for h in hs:
        h.remove()
    model.load_state_dict(state)  # undo the BatchNorm running-statistics update
    norms = {n: math.sqrt(sum(float(p.grad.double().square().sum())
                              for p in model.get_submodule(n).parameters())) for n in BLOCKS}
    grads = {n: outs[n].grad for n in BLOCKS}
    model.zero_grad(set_to_none=True)
    return grads, norms


def check(res, grads, norms):
    assert [r.name for r in res.records] == BLOCKS
    for r in res.records:
        sq, var = stats64(grads[r.name])
        assert r.grad_avg_sq_mean == pytest.approx(sq, rel=1e-6, abs=1e-14)
        assert r.grad_avg_var == pytest.approx(var, rel=1e-6)
        assert r.param_grad_norm == pytest.approx(norms[r.name], rel=1e-6)
        assert r.nonfinite == 0


def test_probe_loss_equals_manual_autograd():
    torch.manual_seed(0)
    model = hand_residual_cnn()
    x = torch.randn(6, 3, 12, 12)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    res = sp.gradient_spp(model, x, seed=3)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())
    probe = torch.randn((6, 5), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grads, norms = manual(model, x, lambda out: (out * probe.float()).sum())
    check(res, grads, norms)
    assert res.loss == "probe" and res.meta["transitions"] == []
    assert res.records[0].n_params == sum(p.numel() for p in model[1].parameters())


def test_labelled_loss_equals_manual_autograd():
    torch.manual_seed(0)
    model = hand_residual_cnn()
    x, y = torch.randn(6, 3, 12, 12), torch.randint(0, 5, (6,))
    ce = nn.CrossEntropyLoss()
    res = sp.gradient_spp(model, x, y, loss_fn=ce)
    grads, norms = manual(model, x, lambda out: ce(out, y))
    check(res, grads, norms)
    assert res.loss == "loss_fn"
    assert res.meta["loss_value"] == pytest.approx(float(ce(model(x), y).detach()), rel=1e-6)


def test_scaled_orthogonal_linear_net_follows_chi_to_the_depth():
    # W_l = sqrt(c) Q_l with Q_l orthogonal: every backward step scales the summed channel
    # variance of the gradient by exactly c, so chi_prediction(res, c) is exact.
    torch.manual_seed(0)
    c = 0.7
    model = nn.Sequential(*[nn.Linear(24, 24, bias=False) for _ in range(6)]).double()
    for lin in model:
        nn.init.orthogonal_(lin.weight, gain=math.sqrt(c))  # orthogonal to float64 precision
    res = sp.gradient_spp(model, torch.randn(32, 24, dtype=torch.float64), blocks=nn.Linear)
    pred = chi_prediction(res, c)
    for meas, p in zip(res.records, pred.records):
        assert p.grad_avg_var == pytest.approx(meas.grad_avg_var, rel=1e-10)
    assert res.records[0].grad_avg_var == pytest.approx(
        res.records[-1].grad_avg_var * c**5, rel=1e-10)


def test_repeated_blocks_and_nonfinite_gradients():
    torch.manual_seed(0)
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    res = sp.gradient_spp(model, torch.randn(3, 4), blocks=[lin])
    assert [r.name for r in res.records] == ["0", "0#2"]
    assert res.records[0].param_grad_norm is not None and res.records[1].param_grad_norm is None
    bad = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with torch.no_grad():
        bad[1].weight[0, 0] = math.inf
    res = sp.gradient_spp(bad, torch.ones(3, 4))
    # the forward overflows in block 1; the backward through its infinite weight makes the
    # gradient at block 0's output non-finite, while block 1's own gradients are finite
    assert res.meta["forward_nonfinite"] == "'1' (Linear)"
    assert res.records[1].nonfinite == 0 and res.records[0].nonfinite > 0
    assert res.first_nonfinite is res.records[0]


def test_bad_input():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match="give y and loss_fn together"):
        sp.gradient_spp(model, x, y=torch.zeros(5))
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        sp.gradient_spp(model, x, torch.zeros(5, 2), loss_fn=nn.MSELoss(reduction="none"))
    with pytest.raises(ValueError, match=r"y must have the batch size of x \(5\)"):
        sp.gradient_spp(model, x, torch.zeros(4, 2), loss_fn=nn.MSELoss())
    with pytest.raises(ValueError, match="x is an empty batch"):
        sp.gradient_spp(model, torch.randn(0, 4))
