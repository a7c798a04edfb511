"""Optimizers: NAG against Sutskever's recursion, against torch's Nesterov, AGC wiring."""

import sys

import pytest
import torch

from signalprop.train import NAG, TrainConfig, build_optimizer


def quad_grad(a, b):
    # f(w) = 0.5 * sum(a * w^2) - b.w  ->  grad = a * w - b
    return lambda w: a * w - b


def test_nag_matches_sutskever_recursion_with_a_changing_learning_rate():
    torch.manual_seed(0)
    a, b, w0 = torch.rand(5, dtype=torch.float64) + 0.5, torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    grad, mu, lrs = quad_grad(a, b), 0.9, [0.1, 0.2, 0.05, 0.3, 0.01, 0.15]
    # reference: theta (the "real" point) and v, gradient at the look-ahead theta + mu v
    theta, v = w0.clone(), torch.zeros(5, dtype=torch.float64)
    p = torch.nn.Parameter(w0.clone())
    opt = NAG([p], lr=1.0, momentum=mu)
    for lr in lrs:
        v = mu * v - lr * grad(theta + mu * v)
        theta = theta + v
        opt.param_groups[0]["lr"] = lr
        p.grad = grad(p.detach())
        opt.step()
        torch.testing.assert_close(p.detach(), theta + mu * v, rtol=1e-12, atol=1e-12)  # the stored look-ahead point


def test_nag_equals_torch_nesterov_at_constant_lr_and_differs_under_a_schedule():
    torch.manual_seed(1)
    a, b, w0 = torch.rand(4, dtype=torch.float64) + 0.5, torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    grad = quad_grad(a, b)

    def run(make, lrs):
        p = torch.nn.Parameter(w0.clone())
        opt = make([p])
        for lr in lrs:
            opt.param_groups[0]["lr"] = lr
            p.grad = grad(p.detach())
            opt.step()
        return p.detach()

    nag = lambda ps: NAG(ps, lr=0.1, momentum=0.8, weight_decay=0.01)  # noqa: E731
    nes = lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01)  # noqa: E731
    torch.testing.assert_close(run(nag, [0.1] * 6), run(nes, [0.1] * 6), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(run(nag, [0.1, 0.3, 0.02] * 2), run(nes, [0.1, 0.3, 0.02] * 2))


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("nesterov", torch.optim.SGD), ("adam", torch.optim.Adam), ("nag", NAG)])
def test_build_optimizer_by_name(name, cls):
    model = torch.nn.Linear(3, 2)
    cfg = TrainConfig(optimizer=name, lr=0.3, momentum=0.7, betas=(0.8, 0.95), eps=1e-6, steps=1)
    stepper, base = build_optimizer(cfg, model)
    assert stepper is base and type(base) is cls
    g = base.param_groups[0]
    assert g["lr"] == 0.3
    if name == "adam":
        assert g["betas"] == (0.8, 0.95) and g["eps"] == 1e-6
    else:
        assert g["momentum"] == 0.7 and g.get("nesterov", name == "nag") == (name in ("nesterov", "nag"))


def test_agc_is_imported_only_when_set_and_missing_agc_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "signalprop.optim", None)  # as if the toolkit were absent
    model = torch.nn.Linear(3, 2)
    build_optimizer(TrainConfig(steps=1), model)  # no AGC requested: no import attempted
    with pytest.raises(ImportError, match=r"agc_clipping=0.01 needs signalprop.optim.AGC .*unset agc_clipping"):
        build_optimizer(TrainConfig(steps=1, agc_clipping=0.01), model)


def test_nag_rejects_bad_arguments():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        NAG(p, lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        NAG(p, lr=0)
