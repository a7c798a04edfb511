"""scikit-learn's bundled digits and UCI tables: shapes, stratified splits, standardization."""

import numpy as np
import pytest
import sklearn.datasets
import torch

from signalprop.data import DatasetSplits, list_datasets, load_dataset, stratified_split
from signalprop.data.tables import digits_indices

RAW = {
    "iris": sklearn.datasets.load_iris,
    "wine": sklearn.datasets.load_wine,
    "breast_cancer": sklearn.datasets.load_breast_cancer,
    "digits": sklearn.datasets.load_digits,
}


def test_stratified_split_partitions_each_class():
    y = np.repeat(np.arange(4), [10, 7, 3, 20])
    tr, te = stratified_split(y, 0.3, seed=5)
    assert np.intersect1d(tr, te).size == 0
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(y)))
    for c, n in enumerate([10, 7, 3, 20]):
        assert (y[te] == c).sum() == round(0.3 * n)
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)
    tr2, te2 = stratified_split(y, 0.3, seed=5)
    assert np.array_equal(te, te2)
    assert not np.array_equal(te, stratified_split(y, 0.3, seed=6)[1])


@pytest.mark.parametrize("name", list(RAW))
def test_table_shapes_splits_and_standardization(name):
    bunch = RAW[name]()
    x_raw, y_raw = bunch.data.astype(np.float64), bunch.target
    d = load_dataset(name, seed=3, test_fraction=0.25)
    assert isinstance(d, DatasetSplits)
    classes = np.unique(y_raw)
    assert d.num_classes == len(classes)
    assert d.input_shape == (x_raw.shape[1],)
    expected_test = sum(round(0.25 * (y_raw == c).sum()) for c in classes)
    assert len(d.test) == expected_test and len(d.train) == len(y_raw) - expected_test
    # undo the standardization with statistics computed here from the raw train rows
    tr, te = stratified_split(y_raw, 0.25, seed=3)
    mean, std = x_raw[tr].mean(0), x_raw[tr].std(0)
    std = np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(d.train.x.numpy() * std + mean, x_raw[tr], rtol=1e-5, atol=1e-4 * np.abs(x_raw).max())
    np.testing.assert_allclose(d.test.x.numpy() * std + mean, x_raw[te], rtol=1e-5, atol=1e-4 * np.abs(x_raw).max())
    assert np.array_equal(d.train.y.numpy(), y_raw[tr]) and np.array_equal(d.test.y.numpy(), y_raw[te])
    assert d.train.x.dtype == torch.float32 and d.train.y.dtype == torch.int64
    # train features: mean 0, std 1 (or constant 0)
    m, s = d.train.x.double().mean(0), d.train.x.double().std(0, unbiased=False)
    assert m.abs().max() < 1e-5
    assert torch.all(((s - 1).abs() < 1e-4) | (s == 0))


def test_tables_are_deterministic_in_the_seed():
    a, b, c = (load_dataset("wine", seed=s) for s in (1, 1, 2))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.test.x, c.test.x)


def test_digits_as_images_use_one_global_mean_and_std():
    flat = load_dataset("digits", seed=0)
    img = load_dataset("digits", seed=0, as_image=True)
    assert flat.input_shape == (64,) and img.input_shape == (1, 8, 8)
    assert img.train.x.shape == (len(img.train), 1, 8, 8) and img.num_classes == 10
    raw = sklearn.datasets.load_digits()
    tr, te = stratified_split(raw.target, 0.2, seed=0)
    mean, std = raw.data[tr].mean(), raw.data[tr].std()
    np.testing.assert_allclose(img.test.x.numpy().reshape(len(te), 64), (raw.data[te] - mean) / std, rtol=1e-5, atol=1e-5)
    assert torch.equal(img.train.y, flat.train.y)


def test_registry_errors_name_the_valid_choices():
    assert {"mnist1d", "digits", "iris", "wine", "breast_cancer", "cifar10", "gaussian"} <= set(list_datasets())
    with pytest.raises(ValueError, match=r"unknown dataset 'irs' \(did you mean iris\?\); valid: "):
        load_dataset("irs")
    with pytest.raises(ValueError, match=r"dataset 'digits' has no option 'image' \(did you mean as_image\?\); valid options: seed, test_fraction, as_image"):
        load_dataset("digits", image=True)
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.5"):
        load_dataset("iris", test_fraction=1.5)


def test_array_split_batches_standardize_and_check_lengths():
    from signalprop.data import ArraySplit

    x = torch.arange(24, dtype=torch.uint8).reshape(4, 2, 3)
    s = ArraySplit(x, torch.tensor([0, 1, 2, 3]), mean=torch.tensor([[1.0], [2.0]]), std=torch.tensor([[2.0], [4.0]]))
    xb, yb = s.batch(torch.tensor([3, 1]))
    assert xb.dtype == torch.float32 and yb.tolist() == [3, 1]
    assert torch.equal(xb[0, 1], (x[3, 1].float() - 2.0) / 4.0)
    assert torch.equal(s[2][0], (x[2].float() - s.mean) / s.std)
    with pytest.raises(ValueError, match="same number of examples, got 4 and 3"):
        ArraySplit(x, torch.tensor([0, 1, 2]))


def test_digits_validation_split_is_disjoint_stratified_and_deterministic():
    raw = sklearn.datasets.load_digits()
    x_raw = raw.data.astype(np.float64)
    for seed in (0, 3):
        tr, va, te = digits_indices(seed, 0.2, 0.25)
        # brute force: the three index sets partition the dataset
        assert set(tr) | set(va) | set(te) == set(range(len(raw.target)))
        assert not set(tr) & set(va) and not set(tr) & set(te) and not set(va) & set(te)
        assert np.array_equal(te, stratified_split(raw.target, 0.2, seed)[1])  # test unchanged
        before = stratified_split(raw.target, 0.2, seed)[0]
        for c in range(10):
            assert (raw.target[va] == c).sum() == round(0.25 * (raw.target[before] == c).sum())
        again = digits_indices(seed, 0.2, 0.25)
        assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert not np.array_equal(digits_indices(0, 0.2, 0.25)[1], digits_indices(1, 0.2, 0.25)[1])
    train = load_dataset("digits", seed=0, validation_fraction=0.25)
    val = load_dataset("digits", seed=0, validation_fraction=0.25, holdout="validation")
    tr, va, te = digits_indices(0, 0.2, 0.25)
    assert torch.equal(train.train.x, val.train.x) and len(train.train) == len(tr)
    # the held-out splits hold exactly those examples, standardized with train's statistics
    mean, std = x_raw[tr].mean(axis=0), x_raw[tr].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    for split, idx in ((val.test, va), (train.test, te)):
        np.testing.assert_allclose(split.x.numpy(), (x_raw[idx] - mean) / std, rtol=1e-5, atol=1e-5)
        assert split.y.tolist() == raw.target[idx].tolist()


def test_digits_holdout_errors():
    with pytest.raises(ValueError, match="holdout must be one of test, validation, got 'val'"):
        load_dataset("digits", validation_fraction=0.2, holdout="val")
    with pytest.raises(ValueError, match="holdout='validation' needs validation_fraction > 0"):
        load_dataset("digits", holdout="validation")
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\), got 1.5"):
        load_dataset("digits", validation_fraction=1.5)
