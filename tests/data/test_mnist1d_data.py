"""MNIST-1D from the mnist1d package's generator: shapes, determinism, no network, no RNG leak."""

import random
import socket

import numpy as np
import pytest
import torch

from signalprop.data import load_dataset, load_mnist1d
from signalprop.data.mnist1d import _generate


def test_shapes_balance_and_standardization():
    d = load_mnist1d(num_samples=300, seed=1)
    assert d.describe() == "mnist1d: 240 train / 60 test examples of shape (40,), 10 classes"
    assert d.train.x.shape == (240, 40) and d.test.x.shape == (60, 40)
    y = torch.cat([d.train.y, d.test.y])
    assert torch.bincount(y, minlength=10).tolist() == [30] * 10  # num_samples // 10 each
    x = torch.cat([d.train.x, d.test.x]).double()
    assert abs(x.mean().item()) < 1e-6 and abs(x.std(unbiased=False).item() - 1) < 1e-6
    s = load_mnist1d(num_samples=300, seed=1, as_signal=True)
    assert s.input_shape == (1, 40) and torch.equal(s.train.x[:, 0], d.train.x)


def test_matches_the_package_generator_and_is_deterministic():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = 200, 7
    ref = make_dataset(args)
    d = load_dataset("mnist1d", num_samples=200, seed=7)
    np.testing.assert_array_equal(d.train.x.numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(d.test.y.numpy(), ref["y_test"])
    _generate.cache_clear()
    again = load_mnist1d(num_samples=200, seed=7)
    assert torch.equal(again.train.x, d.train.x)
    assert not torch.equal(load_mnist1d(num_samples=200, seed=8).train.x, d.train.x)


def test_generation_never_touches_the_network(monkeypatch):
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(requests, "get", refuse)
    _generate.cache_clear()
    d = load_mnist1d(num_samples=100, seed=3)
    assert len(d.train) == 80


def test_global_random_state_is_left_alone():
    _generate.cache_clear()
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    load_mnist1d(num_samples=100, seed=9)
    assert np.random.rand() == expected_np and random.random() == expected_py


def test_bad_options():
    with pytest.raises(ValueError, match="num_samples must be >= 10"):
        load_mnist1d(num_samples=5)
    with pytest.raises(ValueError, match=r"train_split must be in \(0, 1\), got 0"):
        load_mnist1d(train_split=0)


def test_validation_split_is_stratified_and_leaves_the_test_split_alone():
    full = load_mnist1d(num_samples=500, seed=5)
    d = load_mnist1d(num_samples=500, seed=5, validation_fraction=0.2, holdout="validation")
    kept = load_mnist1d(num_samples=500, seed=5, validation_fraction=0.2)
    # per class round(0.2 * n_c) of the 400 training examples (classes not quite balanced)
    expected = [round(0.2 * int((full.train.y == c).sum())) for c in range(10)]
    assert (len(d.train), len(d.test), len(kept.test)) == (400 - sum(expected), sum(expected), 100)
    assert torch.equal(kept.test.x, full.test.x) and torch.equal(kept.train.x, d.train.x)
    both = torch.cat([d.train.x, d.test.x])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, full.train.x.tolist()))
    assert torch.bincount(d.test.y, minlength=10).tolist() == expected
    assert d.meta["holdout"] == "validation"
    with pytest.raises(ValueError, match="holdout must be one of test, validation"):
        load_mnist1d(num_samples=100, holdout="train")
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        load_mnist1d(num_samples=100, validation_fraction=1.5)
