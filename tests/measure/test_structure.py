"""probe_structure / discovery: which modules add a skip connection, measured on the
forward (not read from class names or wrapping), and the blocks found from it."""

import math

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import discover_blocks
from signalprop.measure._structure import probe_structure


class Wrap(nn.Module):
    """y = f(x) where f is given: the wrapper looks the same whatever f computes."""

    def __init__(self, fn, width=6):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


def _centered(h):  # a LayerNorm written by hand: h - mean(h)
    return h - h.mean(-1, keepdim=True)


def _gelu_tanh(h):  # HF's NewGELUActivation: h + 0.044715 h^3 inside
    return 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))


CASES = {
    # skip additions: an identity or projection shortcut around a parametrized branch
    "pre": (lambda m, x: x + m.fc(x), "identity"),
    "post_act": (lambda m, x: torch.relu(x + m.fc(x)), "inner"),
    "post_norm": (lambda m, x: nn.functional.layer_norm(m.fc(x) + x, (6,)), "inner"),
    "in_place": (lambda m, x: m.fc(x).add_(x), "identity"),
    "scaled": (lambda m, x: x + 0.1 * m.fc(x).tanh(), "identity"),
    "projection": (lambda m, x: m.fc(x) + m.fc(x).relu(), "inner"),
    # not skips: no parameter between the fork and the addition, or no common fork
    "centering": (lambda m, x: _centered(m.fc(x)), None),
    "gelu_tanh": (lambda m, x: _gelu_tanh(m.fc(x)), None),
    "add_param": (lambda m, x: m.fc(x) + m.fc.bias, None),
    "plain": (lambda m, x: torch.relu(m.fc(x)), None),
}


@pytest.mark.parametrize("name", CASES)
def test_skip_additions_are_measured_not_named(name):
    fn, kind = CASES[name]
    model = nn.Sequential(nn.Linear(6, 6), Wrap(fn), Wrap(fn))
    s = probe_structure(model, torch.randn(5, 6))
    assert s.skip_kind("1") == kind and s.skip_kind("2") == kind
    assert s.skip_kind("0") is None
    assert s.order[:3] == ["<model>", "0", "1"]


def test_projection_is_counted_once_and_owned_by_the_innermost_module():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(Wrap(CASES["pre"][0]), Wrap(CASES["pre"][0])))
    s = probe_structure(model, torch.randn(3, 6))
    assert s.owners == {"0.0": 1, "0.1": 1}
    assert s.contains_skip("0") and s.skip_kind("0") == "identity"  # y = x + b1 + b2
    assert s.contains_skip("<model>")


def test_state_is_left_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.Dropout(0.5),
                          Wrap(CASES["pre"][0]))
    model[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 6)
    rng = torch.random.get_rng_state()
    probe_structure(model, x)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert not model[0].weight.requires_grad and model[0].bias.requires_grad
    assert not model._forward_hooks and not model[3]._forward_pre_hooks


class Stage(nn.Module):
    """A ResNet stage: residual blocks in a Sequential, then nothing of its own."""

    def __init__(self, n):
        super().__init__()
        self.layers = nn.Sequential(*[Wrap(CASES["post_act"][0]) for _ in range(n)])

    def forward(self, x):
        return self.layers(x)


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(6, 6)
        self.stages = nn.ModuleDict({"a": Stage(2), "b": Stage(1)})
        self.unused = nn.ModuleList([nn.Linear(6, 6), nn.Linear(6, 6)])

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        return x


def test_discovery_opens_stages_and_reads_module_dicts():
    # regressions: a ModuleDict trunk gave "none of the 1 blocks ran", and stages of
    # residual blocks were measured as one block each
    model, x = DictNet(), torch.randn(4, 6)
    plan = discover_blocks(model, x)
    assert [b.name for b in plan.blocks] == ["stages.a.layers.0", "stages.a.layers.1",
                                             "stages.b.layers.0"]
    assert {b.skip for b in plan.blocks} == {"inner"}
    assert "opened up to the residual blocks inside" in plan.rule
    res = sp.spp(model, x)
    assert res.names == [b.name for b in plan.blocks] and res.res_var == [None] * 3
    # without an input nothing is measured: the static rule alone
    assert [b.name for b in discover_blocks(model).blocks] == ["stages.a", "stages.b"]


def test_probe_cost_is_one_small_forward():
    calls = []
    model = nn.Sequential(nn.Linear(6, 6), Wrap(CASES["pre"][0]))
    model.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    probe_structure(model, torch.randn(64, 6))
    assert calls == [2]  # the first two examples only
