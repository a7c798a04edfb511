"""CIFAR-10 read from a directory you provide, in the standard python-pickle batch format.

The "CIFAR-10 python version" archive extracts to ``cifar-10-batches-py/`` holding
``data_batch_1`` ... ``data_batch_5`` (10000 images each) and ``test_batch``: pickled dicts
whose ``data`` is a (N, 3072) uint8 array (1024 red, then green, then blue values of a
32x32 image, row-major) and whose ``labels`` is a list of N integers in 0..9.

Images stay uint8 in memory (150 MB for the whole set) and are standardized per channel
with the train split's mean and std when a batch is taken.

NOTE: the batches are pickles. They are read with an unpickler that only rebuilds dicts,
lists, strings, numbers and NumPy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from signalprop.data._base import (
    ArraySplit,
    DatasetNotFoundError,
    DatasetSplits,
    check_holdout,
    register_dataset,
    split_validation,
)

ENV_VAR = "SIGNALPROP_DATA"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")

# The only globals a CIFAR batch pickle refers to (NumPy array reconstruction).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> images (N, 3, 32, 32) uint8 and labels (N,) int64.

    Raises:
        ValueError: the file is not a CIFAR-10 batch (says what was found instead).

    Examples:
        >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]}
        >>> with open("data_batch_1", "wb") as f:
        ...     pickle.dump(batch, f)
        >>> images, labels = read_batch("data_batch_1")
        >>> images.shape, labels.tolist()
        ((2, 3, 32, 32), [3, 7])
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            d = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"{path} is not a CIFAR-10 python batch: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path} is not a CIFAR-10 python batch: holds a {type(d).__name__}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path} is not a CIFAR-10 python batch: keys {sorted(d)}, "
                         "expected 'data' and 'labels'")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: data has shape {data.shape} and {labels.shape[0]} labels; "
                         "expected (N, 3072) and N labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def find_cifar10(root: str | Path | None = None) -> Path:
    """The directory holding the batch files: ``root`` or ``$SIGNALPROP_DATA``, or their
    ``cifar-10-batches-py`` subfolder.

    Raises:
        DatasetNotFoundError: saying which files to put where.
    """
    if root is None:
        root = os.environ.get(ENV_VAR)
    how = ("download the 'CIFAR-10 python version' archive (cifar-10-python.tar.gz) "
           "yourself, extract it, and pass its folder as root=... (--data-arg root=DIR) or "
           f"set {ENV_VAR}=DIR; DIR must contain {FOLDER}/ (or directly the files "
           f"{', '.join(TRAIN_FILES)}, {TEST_FILE})")
    if root is None:
        raise DatasetNotFoundError(f"CIFAR-10 is not downloaded by signalprop: {how}")
    root = Path(root).expanduser()
    for d in (root / FOLDER, root):
        if all((d / f).is_file() for f in (*TRAIN_FILES, TEST_FILE)):
            return d
    present = root / FOLDER if (root / FOLDER).is_dir() else root
    missing = [f for f in (*TRAIN_FILES, TEST_FILE) if not (present / f).is_file()]
    raise DatasetNotFoundError(f"CIFAR-10 not found in {root} (missing in {present}: "
                               f"{', '.join(missing)}): {how}")


def load_cifar10(root: str | Path | None = None, train_batches: int = 5,
                 validation_fraction: float = 0.0, holdout: str = "test",
                 seed: int = 0) -> DatasetSplits:
    """CIFAR-10 from ``root`` (or ``$SIGNALPROP_DATA``): 50000 train, 10000 test images.

    Args:
        root: a directory containing ``cifar-10-batches-py/`` or the batch files themselves.
        train_batches: read only the first 1..5 training batches (10000 images each).
        validation_fraction: share of each class of the training images held out for
            validation (0: none; drawn with ``seed``); the train split, and the statistics
            that standardize every split, are the rest.
        holdout: the held-out split returned as ``test``: ``"test"`` or ``"validation"``
            (which needs ``validation_fraction > 0``).
        seed: seeds the validation split.

    Returns:
        ``DatasetSplits`` with x (N, 3, 32, 32) uint8, standardized per channel with the
        train split's mean and std whenever a batch is taken; y (N,) int64.

    With the archive extracted under ``~/datasets``, ``load_cifar10("~/datasets")`` holds
    50000 train and 10000 test images. The example reads a tiny stand-in written in the
    same format:

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> for name in (*TRAIN_FILES, TEST_FILE):  # 4 random images per file
        ...     batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
        ...              b"labels": [0, 1, 2, 3]}
        ...     with open(name, "wb") as f:
        ...         pickle.dump(batch, f)
        >>> d = load_cifar10(".")
        >>> d.describe()
        'cifar10: 20 train / 4 test examples of shape (3, 32, 32), 10 classes'
        >>> d.train.tensors()[0].std(dim=(0, 2, 3))  # standardized per channel
        tensor([1.0000, 1.0000, 1.0000])

    References:
        Krizhevsky, "Learning Multiple Layers of Features from Tiny Images" (2009).
    """
    if not 1 <= int(train_batches) <= 5:
        raise ValueError(f"train_batches must be 1..5, got {train_batches!r}")
    check_holdout(holdout, validation_fraction)
    folder = find_cifar10(root)
    parts = [read_batch(folder / f) for f in TRAIN_FILES[: int(train_batches)]]
    x_tr = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y_tr = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    x_te, y_te = (torch.from_numpy(a) for a in read_batch(folder / TEST_FILE))
    train, held = split_validation(ArraySplit(x_tr, y_tr), ArraySplit(x_te, y_te),
                                   validation_fraction, holdout, int(seed))
    mean, std = _channel_stats(train.x)
    return DatasetSplits(
        "cifar10", ArraySplit(train.x, train.y, mean, std),
        ArraySplit(held.x, held.y, mean, std), 10, (3, 32, 32),
        meta={"root": str(folder), "classes": CLASSES, "train_batches": int(train_batches),
              "validation_fraction": validation_fraction, "holdout": holdout, "seed": seed})


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (3, 1, 1) of uint8 images (N, 3, 32, 32), in float64."""
    mean = torch.zeros(3, dtype=torch.float64)
    sq = torch.zeros(3, dtype=torch.float64)
    for chunk in x.split(5000):
        c = chunk.to(torch.float64)
        mean += c.sum(dim=(0, 2, 3))
        sq += (c * c).sum(dim=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean /= n
    std = (sq / n - mean**2).clamp_min(0).sqrt()
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.to(torch.float32).reshape(3, 1, 1), std.to(torch.float32).reshape(3, 1, 1)


register_dataset("cifar10", load_cifar10,
                 f"CIFAR-10 from your own copy (root=DIR or ${ENV_VAR}), python batch format")
