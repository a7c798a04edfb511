"""Gaussian inputs with a random linear teacher."""

import math

import pytest
import torch

from signalprop.data import load_gaussian


def test_shapes_labels_follow_the_documented_teacher():
    d = load_gaussian((3, 4, 4), num_classes=5, num_train=64, num_test=16, seed=11)
    assert d.train.x.shape == (64, 3, 4, 4) and d.test.x.shape == (16, 3, 4, 4)
    assert d.input_shape == (3, 4, 4) and d.num_classes == 5
    # recompute from the documented recipe: teacher first, then train, then test draws
    g = torch.Generator().manual_seed(11)
    w = torch.randn(5, 48, generator=g) / math.sqrt(48)
    x_tr = torch.randn(64, 48, generator=g)
    x_te = torch.randn(16, 48, generator=g)
    assert torch.equal(d.train.x.reshape(64, 48), x_tr)
    assert torch.equal(d.train.y, (x_tr @ w.T).argmax(1))
    assert torch.equal(d.test.y, (x_te @ w.T).argmax(1))


def test_deterministic_and_standard_normal():
    a, b = load_gaussian(seed=2, num_train=4000), load_gaussian(seed=2, num_train=4000)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(load_gaussian(seed=3).train.x, a.train.x[:1024])
    x = a.train.x.double()
    n = x.numel()  # 128000 values: mean has std 1/sqrt(n), variance estimate std sqrt(2/n)
    assert abs(x.mean().item()) < 5 / math.sqrt(n)
    assert abs(x.var().item() - 1) < 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("kwargs,msg", [
    ({"input_shape": (0, 3)}, r"input_shape must be positive sizes, got \(0, 3\)"),
    ({"num_classes": 1}, "num_classes must be >= 2, got 1"),
    ({"num_test": 0}, "num_train and num_test must be >= 1"),
])
def test_bad_options(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        load_gaussian(**kwargs)
