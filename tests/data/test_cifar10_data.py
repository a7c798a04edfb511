"""CIFAR-10 from user files in the python-pickle batch format (tiny batches written here)."""

import os
import pickle

import numpy as np
import pytest
import torch

from signalprop.data import DatasetNotFoundError, load_cifar10, load_dataset, read_batch

FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_batches(folder, n=4, seed=0, bytes_keys=True):
    """Batches of ``n`` random images in the archive's format; returns {file: (data, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate(FILES):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        key = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
        d = {key("batch_label"): key(f"batch {i}"), key("labels"): labels, key("data"): data,
             key("filenames"): [key(f"img{j}.png") for j in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)  # protocol 2 like the original (Python 2) files
        out[name] = (data, labels)
    return out


def test_reads_the_batch_format_pixel_layout_and_normalization(tmp_path):
    raw = write_batches(tmp_path / "cifar-10-batches-py", n=4)
    d = load_cifar10(tmp_path)
    assert d.describe() == "cifar10: 20 train / 4 test examples of shape (3, 32, 32), 10 classes"
    assert d.train.x.dtype == torch.uint8 and d.train.x.shape == (20, 3, 32, 32)
    # pixel (channel c, row r, column k) of image j is data[j, 1024 c + 32 r + k]
    data1 = raw["data_batch_1"][0]
    assert d.train.x[1, 2, 5, 7].item() == data1[1, 1024 * 2 + 32 * 5 + 7]
    assert d.train.y[4:8].tolist() == raw["data_batch_2"][1]
    assert d.test.y.tolist() == raw["test_batch"][1]
    # batches come out standardized with the train images' per-channel statistics
    train = np.concatenate([raw[f][0] for f in FILES[:5]]).reshape(20, 3, 1024).astype(np.float64)
    mean, std = train.mean(axis=(0, 2)), train.std(axis=(0, 2))
    x, y = d.test.batch(torch.tensor([2]))
    expect = (raw["test_batch"][0][2].reshape(3, 32, 32) - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(x[0].numpy(), expect, rtol=1e-5, atol=1e-5)
    assert y.tolist() == [raw["test_batch"][1][2]]


def test_environment_variable_string_keys_and_partial_train_set(tmp_path, monkeypatch):
    write_batches(tmp_path, n=3, bytes_keys=False)  # files directly in the folder
    monkeypatch.setenv("SIGNALPROP_DATA", str(tmp_path))
    d = load_dataset("cifar10", train_batches=2)
    assert len(d.train) == 6 and len(d.test) == 3


def test_missing_files_say_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGNALPROP_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="set SIGNALPROP_DATA=DIR; DIR must contain cifar-10-batches-py/"):
        load_cifar10()
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder, n=2)
    os.remove(folder / "test_batch")
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR-10 not found in .* \(missing in .*cifar-10-batches-py: test_batch\)"):
        load_cifar10(tmp_path)


def test_refuses_pickles_that_are_not_plain_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="is not a CIFAR-10 python batch: refusing to load posix.system"):
        read_batch(path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"data has shape \(2, 100\) and 2 labels; expected \(N, 3072\)"):
        read_batch(path)
    with pytest.raises(ValueError, match="train_batches must be 1..5, got 0"):
        load_cifar10(tmp_path, train_batches=0)


def test_validation_split_is_stratified_disjoint_and_sets_the_statistics(tmp_path):
    raw = write_batches(tmp_path, n=20, seed=1)
    full = load_cifar10(tmp_path)
    d = load_cifar10(tmp_path, validation_fraction=0.25, holdout="validation", seed=3)
    kept = load_cifar10(tmp_path, validation_fraction=0.25, seed=3)
    assert len(d.train) + len(d.test) == 100 and len(kept.train) == len(d.train)
    assert torch.equal(kept.test.x, full.test.x)  # holdout="test": the test images
    # train and validation partition the train images; per class, round(0.25 * n_c) held out
    rows = {bytes(r) for r in full.train.x.reshape(100, -1).numpy()}
    tr = [bytes(r) for r in d.train.x.reshape(len(d.train), -1).numpy()]
    va = [bytes(r) for r in d.test.x.reshape(len(d.test), -1).numpy()]
    assert set(tr) | set(va) == rows and not set(tr) & set(va)
    y = full.train.y.numpy()
    counts = np.bincount(d.test.y.numpy(), minlength=10)
    assert counts.tolist() == [int(round(0.25 * (y == c).sum())) for c in range(10)]
    # standardization uses the remaining train images only
    x = d.train.x.numpy().astype(np.float64)
    np.testing.assert_allclose(d.train.mean.flatten().numpy(), x.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(d.test.std.flatten().numpy(), x.std(axis=(0, 2, 3)), rtol=1e-5)
    assert len(raw) == 6
    with pytest.raises(ValueError, match="validation_fraction > 0"):
        load_cifar10(tmp_path, holdout="validation")
