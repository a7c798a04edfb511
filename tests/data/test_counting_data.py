"""The counting datasets against brute-force counting in Python loops."""

import pytest
import torch

from signalprop.data import count_batch, load_dataset


def _brute_each(row, background=True):
    return [0 if background and t == 0 else sum(1 for u in row if u == t) for t in row]


def test_each_labels_are_brute_force_counts():
    x, y = count_batch(50, 20, generator=torch.Generator().manual_seed(0))
    for row, labels in zip(x.tolist(), y.tolist()):
        assert labels == _brute_each(row)
    x, y = count_batch(30, 5, background=False, vocab_size=4,
                       generator=torch.Generator().manual_seed(1))
    for row, labels in zip(x.tolist(), y.tolist()):
        assert labels == _brute_each(row, background=False)


def test_query_labels_count_the_query_after_it():
    x, y = count_batch(25, 30, task="query", generator=torch.Generator().manual_seed(2))
    assert x.shape == (30, 26) and (x[:, 0] > 0).all()
    for row, label in zip(x.tolist(), y.tolist()):
        assert label == sum(1 for t in row[1:] if t == row[0])


def test_density_and_colours():
    x, _ = count_batch(2000, 8, density=0.8, generator=torch.Generator().manual_seed(3))
    coloured = (x > 0).double().mean().item()
    assert abs(coloured - 0.8) < 4 * (0.8 * 0.2 / x.numel()) ** 0.5
    assert set(x.unique().tolist()) == set(range(10))


def test_splits_are_padded_and_seeded():
    d = load_dataset("count", num_train=300, num_test=50, num_ood=7, ood_lengths=[100, 400])
    pad = d.meta["pad_id"]
    lengths = (d.train.x != pad).sum(1)
    assert set(lengths.tolist()) == {1, 4, 9, 16, 25, 36}
    assert torch.equal(d.train.y == -1, d.train.x == pad)
    for row, labels, n in zip(d.train.x.tolist(), d.train.y.tolist(), lengths.tolist()):
        assert labels[:n] == _brute_each(row[:n])
    assert sorted(d.meta["ood"]) == [100, 400] and d.meta["ood"][400].x.shape == (7, 400)
    again = load_dataset("count", num_train=300, num_test=50, num_ood=7,
                         ood_lengths=[100, 400])
    assert torch.equal(again.train.x, d.train.x) and torch.equal(again.test.y, d.test.y)
    other = load_dataset("count", num_train=300, num_test=50, num_ood=7, seed=1)
    assert not torch.equal(other.train.x, d.train.x)
    xb, yb = d.train.batch(torch.tensor([0, 1]))
    assert xb.dtype == torch.int64 and yb.dtype == torch.int64


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="density must be in"):
        count_batch(4, 2, density=0.0)
    with pytest.raises(ValueError, match="task must be one of"):
        count_batch(4, 2, task="sum")
    with pytest.raises(ValueError, match="lengths >= 1"):
        load_dataset("count", train_lengths=[0, 4])
    with pytest.raises(ValueError, match="vocab_size must be"):
        load_dataset("count", vocab_size=2)
