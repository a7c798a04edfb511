"""The exp schedule (Li & Arora 2020): the root, the rates, the config's conditions, and the
equivalence itself on a tiny scale-invariant network in float64 (an independent loop)."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.train import TrainConfig, exp_alpha, fit, lr_at, read_metrics


def test_alpha_is_the_larger_root_and_the_rates_grow_by_alpha_minus_2():
    for lr, mom, wd in ((0.1, 0.9, 5e-3), (0.5, 0.0, 0.2), (0.05, 0.5, 1e-2)):
        a = exp_alpha(lr, mom, wd)
        assert a * a - (1 + mom - wd * lr) * a + mom == pytest.approx(0.0, abs=1e-14)
        other = mom / a if mom else 0.0  # the product of the roots is mom
        assert a >= other
    cfg = TrainConfig(lr=0.1, momentum=0.9, schedule="exp", exp_weight_decay=5e-3, steps=10)
    a = exp_alpha(0.1, 0.9, 5e-3)
    assert [lr_at(t, cfg, 10) for t in range(3)] == pytest.approx(
        [0.1 / a, 0.1 / a**3, 0.1 / a**5])


def test_config_states_the_conditions():
    base = {"schedule": "exp", "steps": 5}
    with pytest.raises(ValueError, match="needs exp_weight_decay > 0"):
        TrainConfig(**base)
    with pytest.raises(ValueError, match="needs optimizer 'sgd' and no warm-up"):
        TrainConfig(**base, exp_weight_decay=1e-3, optimizer="adam")
    with pytest.raises(ValueError, match="needs optimizer 'sgd' and no warm-up"):
        TrainConfig(**base, exp_weight_decay=1e-3, warmup_steps=2)
    with pytest.raises(ValueError, match=r"no real exponential schedule .* \(1 - sqrt"):
        TrainConfig(**base, exp_weight_decay=0.5, lr=0.1, momentum=0.9)
    # fields added later keep the run keys of configs that do not use them
    assert "exp_weight_decay" not in TrainConfig(steps=3).to_dict() or TrainConfig(
        steps=3).run_key() == TrainConfig(steps=3, objective_args={}).run_key()


def _net(seed):
    torch.manual_seed(seed)
    bn = lambda: nn.BatchNorm1d(8, affine=False, track_running_stats=False, eps=1e-30)  # noqa: E731
    net = nn.Sequential(nn.Linear(5, 8, bias=False), bn(), nn.ReLU(),
                        nn.Linear(8, 8, bias=False), bn(), nn.Tanh(), nn.Linear(8, 3)).double()
    net[6].requires_grad_(False)
    return net


def test_weight_decay_run_and_exp_run_give_the_same_function_for_300_steps():
    """Hand-written loop, not the claim's code: same batches; the exp run starts its
    momentum at (alpha - 1) theta_0 / (lr alpha). Predictions agree to 1e-9 relative
    and the weights are alpha^-t times the weight-decay run's; zero initial momentum or a
    fixed lr without weight decay give other functions."""
    lr, mom, wd, steps = 0.1, 0.9, 1e-2, 300
    a = exp_alpha(lr, mom, wd)
    cfg = TrainConfig(lr=lr, momentum=mom, schedule="exp", exp_weight_decay=wd, steps=steps)
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(steps, 16, 5, generator=g, dtype=torch.float64), torch.randint(
        0, 3, (steps, 16), generator=g)
    x_eval = torch.randn(32, 5, generator=g, dtype=torch.float64)

    def run(kind):
        net = _net(0)
        ps = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.SGD(ps, lr=lr, momentum=mom, weight_decay=wd if kind == "wd" else 0)
        if kind == "exp":
            for p in ps:
                opt.state[p]["momentum_buffer"] = (a - 1) * p.detach().clone() / (lr * a)
        preds = []
        for t in range(steps):
            if kind in ("exp", "exp0"):
                opt.param_groups[0]["lr"] = lr_at(t, cfg, steps)
            loss = F.cross_entropy(net(xs[t]), ys[t])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                preds.append(net(x_eval))
        return net, torch.stack(preds)

    net_wd, p_wd = run("wd")
    net_exp, p_exp = run("exp")
    scale = p_wd.square().mean(dim=(1, 2)).sqrt()
    rel = ((p_wd - p_exp).abs().amax(dim=(1, 2)) / scale).max().item()
    assert rel < 1e-9, rel  # 1.2e-11 measured
    torch.testing.assert_close(net_exp[0].weight, net_wd[0].weight * a**-steps,
                               rtol=1e-9, atol=0)
    assert (p_wd[-1] - p_wd[0]).abs().max() > 0.1  # the function did move
    for kind in ("exp0", "fixed"):
        _, p = run(kind)
        assert ((p_wd[-1] - p[-1]).abs().max() / scale[-1]).item() > 1e-3, kind


def test_fit_runs_the_exp_schedule_and_logs_effective_lr(tmp_path):
    cfg = TrainConfig(model="signalprop.experiments._models:relu_mlp",
                      model_args={"depth": 2, "width": 8, "in_features": 4, "num_classes": 3,
                                  "batchnorm": True},
                      dataset="iris", lr=0.1, momentum=0.9, schedule="exp",
                      exp_weight_decay=1e-2, steps=14, batch_size=16, log_every=7,
                      log_effective_lr=True)
    res = fit(cfg, tmp_path, progress=False)
    assert res.status == "completed"
    train = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    a = exp_alpha(0.1, 0.9, 1e-2)
    assert train[0]["lr"] == pytest.approx(0.1 * a ** (-2 * 6 - 1))
    assert all(math.isfinite(r["eff_lr"]) and r["eff_lr_min"] <= r["eff_lr"] <= r["eff_lr_max"]
               for r in train)
    # fc0 and fc1 feed BatchNorm: lr / ||w||^2 of those two, by hand at the end
    w = [res.model.fc0.weight, res.model.fc1.weight]
    want = sum(train[-1]["lr"] / v.detach().double().square().sum().item() for v in w) / 2
    assert train[-1]["eff_lr"] == pytest.approx(want, rel=1e-6)
