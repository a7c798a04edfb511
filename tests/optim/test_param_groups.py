"""param_groups(): which parameters go where, learning rates, decay, use with optimizers."""

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.optim import param_groups


def test_scalars_gains_and_biases_get_their_own_lr_and_no_decay():
    model = sp.models.resnetv2([1], norm="fixup", stem="cifar", width=0.25, num_classes=3)
    groups = param_groups(model, lr=0.1, weight_decay=5e-4, scalar_lr_mult=0.1)
    by_name = {g["name"]: g for g in groups}
    ids = {n: id(p) for n, p in model.named_parameters()}
    weights = {id(p) for p in by_name["weights"]["params"]}
    scalars = {id(p) for p in by_name["scalars"]["params"]}
    # brute force: every parameter in exactly one group, by its number of dimensions
    for name, p in model.named_parameters():
        assert (ids[name] in scalars) == (p.dim() <= 1), name
        assert (ids[name] in weights) == (p.dim() >= 2), name
    assert by_name["weights"]["lr"] == 0.1 and by_name["weights"]["weight_decay"] == 5e-4
    assert by_name["scalars"]["lr"] == pytest.approx(0.01) and by_name["scalars"]["weight_decay"] == 0
    assert "stages.0.0.skip_gain.gain" in {n for n, p in model.named_parameters() if id(p) in scalars}


def test_optimizer_applies_decay_only_to_weights():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(1.0)
    opt = torch.optim.SGD(param_groups(lin, lr=0.5, weight_decay=0.1, scalar_lr_mult=2.0), lr=9.0)
    lin.weight.grad = torch.zeros_like(lin.weight)
    lin.bias.grad = torch.ones_like(lin.bias)
    opt.step()
    # weights: w - lr * (0 + wd * w) = 1 - 0.5 * 0.1; bias: b - (lr * mult) * 1 = 1 - 1.0
    assert torch.allclose(lin.weight, torch.full_like(lin.weight, 0.95))
    assert torch.allclose(lin.bias, torch.zeros_like(lin.bias))


def test_frozen_parameters_are_left_out_and_shared_ones_appear_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 2).requires_grad_(False))
    groups = param_groups(model, lr=0.1)
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == 2


def test_custom_predicate_and_bad_input():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    groups = param_groups(model, lr=0.1, is_scalar=lambda n, p: n.startswith("1."))
    assert [len(g["params"]) for g in groups] == [2, 2]
    for kwargs, match in [({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
                          ({"lr": 0.1, "weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
                          ({"lr": 0.1, "scalar_lr_mult": 0.0}, "scalar_lr_mult must be a finite number > 0")]:
        with pytest.raises(ValueError, match=match):
            param_groups(model, **kwargs)
    with pytest.raises(ValueError, match="has no trainable parameter"):
        param_groups(nn.Linear(2, 2).requires_grad_(False), lr=0.1)
