"""batch_independence(): leak vs a brute-force recomputation, verdicts, restoration, bad input."""

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import ForwardError
from signalprop.results import BatchIndependenceResult


def _bn_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


def _brute_leak(model, x, x2, index, train):
    """Max over j != index of ||f(x')_j - f(x)_j|| / ||f(x)_j||, from two plain forwards on
    copies of the model (so running statistics cannot carry over)."""
    import copy

    outs = []
    for inp in (x, x2):
        m = copy.deepcopy(model).train(train)
        with torch.no_grad():
            outs.append(m(inp).double())
    a, b = outs
    rel = (b - a).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1)
    mask = torch.arange(len(x)) != index
    return rel[mask].max().item(), rel[index].item()


def test_batchnorm_leaks_in_train_mode_only_and_the_leak_matches_brute_force():
    torch.manual_seed(0)
    model = _bn_net()
    x = torch.randn(6, 3, 8, 8)
    res = sp.batch_independence(model, x, index=2, seed=5)
    assert not res.independent
    assert res.first_leak == {"train": "1", "eval": None}
    assert res.leak["eval"] == 0.0
    # the same perturbation, by hand
    gen = torch.Generator().manual_seed(5)
    x2 = x.clone()
    x2[2] = torch.randn(x[2].shape, generator=gen) * x.std() + x.mean()
    leak, sens = _brute_leak(model, x, x2, 2, train=True)
    assert res.leak["train"] == pytest.approx(leak, rel=1e-6)
    assert res.sensitivity["train"] == pytest.approx(sens, rel=1e-6)
    assert res.leak["train"] > 1e-3  # BatchNorm's batch statistics move with one example
    assert "NOT independent" in res.summary() and "first in '1'" in res.summary()


@pytest.mark.parametrize("norm_layer", [lambda: nn.GroupNorm(2, 8), lambda: nn.Identity()])
def test_per_example_models_are_independent_with_dropout_in_train_mode(norm_layer):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), norm_layer(), nn.ReLU(), nn.Dropout(0.5),
                          nn.Flatten(), nn.Linear(8 * 36, 3))
    res = sp.batch_independence(model, torch.randn(5, 3, 8, 8))
    assert res.independent and res.leak == {"train": 0.0, "eval": 0.0}
    assert res.sensitivity["train"] > 0.1 and res.sensitivity["eval"] > 0.1
    assert res.first_leak == {"train": None, "eval": None}


def test_mode_buffers_and_rng_are_restored():
    torch.manual_seed(0)
    model = _bn_net()
    model.train()
    model[1].eval()  # a mixed-mode model keeps its per-module modes
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 8, 8)
    before = torch.random.get_rng_state()
    sp.batch_independence(model, x)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert model.training and not model[1].training and model[0].training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_nonfinite_output_is_reported_where_it_first_appears():
    class Explode(nn.Module):
        def forward(self, x):
            return x * float("inf")

    model = nn.Sequential(nn.Linear(4, 4), Explode(), nn.Linear(4, 2))
    res = sp.batch_independence(model, torch.randn(3, 4))
    assert not res.independent
    assert res.nonfinite == {"train": "1", "eval": "1"}
    assert "NaN/Inf first in '1'" in res.summary()
    back = BatchIndependenceResult.from_json(res.to_json())
    assert back.nonfinite == res.nonfinite and not back.independent


def test_dict_and_token_inputs_and_json_round_trip():
    class Tok(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 6)
            self.bn = nn.BatchNorm1d(6)

        def forward(self, ids, scale):
            return self.bn(self.emb(ids).mean(1)) * scale

    ids = torch.tensor([[1, 2], [3, 4], [5, 6]])
    res = sp.batch_independence(Tok(), {"ids": ids, "scale": torch.ones(3, 1)}, modes=["train"])
    assert list(res.leak) == ["train"] and res.leak["train"] > 0
    back = BatchIndependenceResult.from_json(res.to_json())
    assert back.leak == res.leak and back.independent == res.independent == False  # noqa: E712


@pytest.mark.parametrize(
    "kwargs,x,match",
    [
        ({}, torch.randn(1, 4), "at least 2 examples to check independence, got 1"),
        ({"index": 5}, torch.randn(3, 4), r"index must be an integer in \[-3, 2\], got 5"),
        ({"modes": ["test"]}, torch.randn(3, 4), "modes must be a non-empty subset of"),
        ({"tolerance": -1.0}, torch.randn(3, 4), "tolerance must be a finite number >= 0"),
    ],
)
def test_bad_arguments(kwargs, x, match):
    with pytest.raises(ValueError, match=match):
        sp.batch_independence(nn.Linear(4, 2), x, **kwargs)


def test_output_without_batch_axis_and_failing_forward():
    class Reduce(nn.Module):
        def forward(self, x):
            return x.sum()

    with pytest.raises(ValueError, match="output must have the batch axis first"):
        sp.batch_independence(Reduce(), torch.randn(3, 4))
    with pytest.raises(ForwardError, match="module '0' \\(Linear\\)"):
        sp.batch_independence(nn.Sequential(nn.Linear(5, 2)), torch.randn(3, 4))
