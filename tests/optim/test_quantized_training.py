"""QuantizedTraining: BC / SR / R steps against the update rules written out, unbiased
stochastic rounding, the state_dict round trip, and the trainer integration."""

import copy
import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.models import quant_mlp
from signalprop.nn import QuantLinear
from signalprop.nn.functional import round_to_grid
from signalprop.optim import AGC, QuantizationWarning, QuantizedTraining, _fused_step
from signalprop.train import TrainConfig, build_optimizer, fit


def _net(levels="binary", seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(QuantLinear(6, 16, weight_levels=levels), nn.Tanh(), nn.Linear(16, 3))


def _loss(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
    return F.cross_entropy(net(x), y)


@pytest.mark.parametrize("levels", ["binary", "ternary", 3])
def test_stochastic_rounding_is_unbiased(levels):
    unit = torch.tensor(0.5)
    x = torch.tensor([-0.3, 0.1, 0.2, 0.49]) * (2 if levels == 3 else 1)  # inside the range
    gen = torch.Generator().manual_seed(0)
    draws = round_to_grid(x.expand(20000, 4), unit, levels, stochastic=True, generator=gen)
    grid = torch.tensor([-0.5, 0.5]) if levels == "binary" else None
    if grid is not None:
        assert set(draws.unique().tolist()) <= set(grid.tolist())
    se = draws.std(dim=0) / math.sqrt(draws.shape[0])
    assert torch.all((draws.mean(dim=0) - x).abs() <= 4 * se + 1e-6)
    nearest = round_to_grid(x, unit, levels, stochastic=False)
    assert torch.all((nearest.unsqueeze(0) - x).abs() <= (draws - x).abs().min(dim=0).values
                     + 1e-7)


def test_rounding_clamps_to_the_grid_range():
    out = round_to_grid(torch.tensor([-9.0, 9.0]), torch.tensor(0.25), 3, stochastic=True)
    assert out.tolist() == [-0.75, 0.75]


def test_sr_step_is_rounded_sgd_with_a_fixed_grid(monkeypatch):
    # the general path (torch's generator); the one-pass SGD path: test_fused_step.py
    monkeypatch.setattr(_fused_step, "_kernel_matches", False)
    net = _net()
    w0 = net[0].weight.detach().clone()
    unit = w0.abs().mean()  # binary mean-|w|: the grid is {-unit, +unit}
    opt = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.05), net, "sr", snap=True,
                            seed=3)
    w = net[0].weight.detach().clone()
    torch.testing.assert_close(w, torch.where(w0 >= 0, unit, -unit))
    _loss(net).backward()
    g = net[0].weight.grad.detach().clone()
    opt.step()
    # the rule written out: x = w - lr g, then unbiased rounding onto {-unit, +unit}
    x = w - 0.05 * g
    p_up = ((x / unit + 1) / 2).clamp(0, 1)
    # the same uniform stream mapped to [0, 1): up iff u < p_up
    r = torch.empty(x.shape).uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(3))
    expected = torch.where((r + 1) / 2 < p_up, unit, -unit)
    torch.testing.assert_close(net[0].weight.detach(), expected)
    assert opt.grid_units()["0"] == pytest.approx(float(unit))


def test_r_rounds_to_nearest_and_bc_is_the_plain_step():
    net = _net("ternary")
    ref = copy.deepcopy(net)
    opt = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.3), net, "r", snap=True)
    unit = opt.grid_units()["0"]
    _loss(net).backward()
    opt.step()
    assert set((net[0].weight / unit).round(decimals=5).unique().tolist()) <= {-1.0, 0.0, 1.0}

    bc_net = copy.deepcopy(ref)
    plain = copy.deepcopy(ref)
    bc = QuantizedTraining(torch.optim.Adam(bc_net.parameters(), lr=1e-2), bc_net, "bc")
    adam = torch.optim.Adam(plain.parameters(), lr=1e-2)
    for step in range(3):
        for model, o in ((bc_net, bc), (plain, adam)):
            o.zero_grad()
            _loss(model, step).backward()
            o.step()
    for a, b in zip(bc_net.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b)
    assert net[0].grid_unit is not None and bc_net[0].grid_unit is None


def test_off_grid_weights_warn_once_unless_snapped():
    net = _net()
    with pytest.warns(QuantizationWarning, match="were quantized once"):
        opt = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "sr")
    opt.release()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "sr")  # on the grid
        fresh = _net()
        QuantizedTraining(torch.optim.SGD(fresh.parameters(), lr=0.1), fresh, "sr", snap=True)


def test_mixing_schemes_is_refused():
    net = _net()
    bc = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "bc")
    with pytest.raises(ValueError, match="already trained by a 'bc' QuantizedTraining; mixing"):
        QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "sr", snap=True)
    bc.release()
    QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "sr", snap=True)


@pytest.mark.parametrize("call, match", [
    (lambda: QuantizedTraining(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1),
                               nn.Linear(2, 2)), "no quantized layer"),
    (lambda: QuantizedTraining(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), _net(),
                               "sgd"), "mode='sgd' is not allowed; valid: bc, sr, r"),
    (lambda: QuantizedTraining(object(), _net()), "optimizer must be a torch optimizer"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("mode", ["bc", "sr", "r"])
@pytest.mark.parametrize("make", [
    lambda params: torch.optim.Adam(params, lr=0.05),
    # SR / R take the one-pass SGD step here (its counter-based draws must resume too)
    lambda params: torch.optim.SGD(params, lr=0.3, momentum=0.9),
], ids=["adam", "sgd"])
def test_state_dict_round_trip_continues_identically(mode, make):
    net = _net("ternary", seed=1)
    opt = QuantizedTraining(make(net.parameters()), net, mode, snap=True)
    for step in range(3):
        opt.zero_grad()
        _loss(net, step).backward()
        opt.step()
    state = copy.deepcopy((net.state_dict(), opt.state_dict()))
    one_pass = isinstance(opt.optimizer, torch.optim.SGD) and mode != "bc"
    assert state[1]["quantized"]["fused_steps"] == (3 if one_pass else 0)
    twin = _net("ternary", seed=9)  # other initial weights: everything comes from the state
    twin_opt = QuantizedTraining(make(twin.parameters()), twin, mode, snap=True)
    twin.load_state_dict(state[0])
    twin_opt.load_state_dict(state[1])
    for step in range(3, 6):
        for model, o in ((net, opt), (twin, twin_opt)):
            o.zero_grad()
            _loss(model, step).backward()
            o.step()
    for a, b in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other_net = _net("ternary")
    other = QuantizedTraining(torch.optim.Adam(other_net.parameters()), other_net,
                              "bc" if mode != "bc" else "sr", snap=True)
    with pytest.raises(ValueError, match="state is from a"):
        other.load_state_dict(state[1])


def test_wraps_agc_and_schedulers_see_the_param_groups():
    net = _net()
    agc = AGC(torch.optim.SGD(net.parameters(), lr=0.1), net, clipping=0.01,
              example_input=torch.randn(2, 6))
    opt = QuantizedTraining(agc, net, "sr", snap=True)
    sched = torch.optim.lr_scheduler.StepLR(opt.optimizer.optimizer, step_size=1, gamma=0.5)
    _loss(net).backward()
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.05
    assert "agc" in opt.state_dict()["optimizer"]


_STOP = {"after": None, "calls": 0}


def interrupted_quant_mlp(**kwargs):
    """quant_mlp whose training forward raises KeyboardInterrupt after _STOP["after"] calls
    (the trainer then checkpoints and re-raises, as on Ctrl-C)."""
    net = quant_mlp(**kwargs)
    plain = net.forward

    def forward(x):
        if net.training and _STOP["after"] is not None:
            _STOP["calls"] += 1
            if _STOP["calls"] > _STOP["after"]:
                raise KeyboardInterrupt
        return plain(x)

    net.forward = forward
    return net


def test_trainer_trains_an_sr_model_and_resumes_identically(tmp_path, monkeypatch):
    cfg = TrainConfig(model="test_quantized_training:interrupted_quant_mlp",
                      model_args={"depth": 2, "width": 32, "in_features": 4, "out_features": 3},
                      dataset="iris", optimizer="adam", lr=0.01, steps=24, batch_size=16,
                      quantize="sr", log_every=4, seed=5, checkpoint_every=100)
    stepper, base = build_optimizer(cfg, quant_mlp(2, 8, in_features=4, out_features=3))
    assert isinstance(stepper, QuantizedTraining) and stepper is base
    full = fit(cfg, tmp_path / "full", progress=False)
    assert full.status == "completed"
    for name in ("fc0", "fc1"):
        layer = full.model.get_submodule(name)
        codes = layer.weight / layer.grid_unit
        torch.testing.assert_close(codes.abs(), torch.ones_like(codes))
    monkeypatch.setitem(_STOP, "after", 11)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setitem(_STOP, "after", None)
    resumed = fit(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.resumed_from == 11
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_config_rejects_unknown_schemes():
    with pytest.raises(ValueError, match="quantize='bin' is not allowed; valid: bc, sr, r"):
        TrainConfig(steps=1, quantize="bin")


def test_sweep_runner_varies_the_scheme(tmp_path):
    from signalprop.sweep import SweepDB, SweepSpec, run_sweep

    base = {"model": "quant_mlp", "model_args": {"depth": 1, "width": 8, "in_features": 4,
                                                 "out_features": 3},
            "dataset": "iris", "optimizer": "adam", "lr": 0.01, "steps": 8, "batch_size": 16}
    spec = SweepSpec.from_dict({"base": base, "grid": {"quantize": ["bc", "sr", "r"]},
                                "seeds": 1}, default_out=tmp_path / "s")
    summary = run_sweep(spec, progress=False, log=lambda _: None)
    assert summary.counts["completed"] == 3
    with SweepDB(tmp_path / "s" / "sweep.sqlite", create=False) as db:
        rows = {r["label"]: r for r in db.rows()}
    ref = fit(TrainConfig.from_dict({**base, "quantize": "sr"}), progress=False)
    assert rows["quantize=sr seed=0"]["test_acc"] == ref.metrics["test_acc"]
