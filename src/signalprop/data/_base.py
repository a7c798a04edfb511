"""In-memory datasets: a train/test pair of tensors, a registry of names, one error type.

Every dataset signalprop knows is small enough to hold in memory (CIFAR-10 as uint8 is
150 MB), so a split is two tensors and batches are plain indexing: no ``DataLoader``, no
worker processes, and a batch order that depends only on the seed and the epoch.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that must be supplied by the user is not where it was looked for.

    The message says which files to put in which directory.

    Examples:
        >>> try:
        ...     load_dataset("cifar10", root="no-such-folder")
        ... except DatasetNotFoundError as err:
        ...     print(err)
        CIFAR-10 not found in no-such-folder (missing in no-such-folder: data_batch_1, ...):
        download the 'CIFAR-10 python version' archive (cifar-10-python.tar.gz) yourself, ...
    """


@dataclass
class ArraySplit(torch.utils.data.Dataset):
    """One split held as tensors: ``x`` (N, *input_shape) and integer labels ``y`` (N,).

    ``x`` may be stored compactly (CIFAR-10 keeps uint8); ``mean`` and ``std`` (broadcast
    against one example, e.g. (C, 1, 1)) standardize it when a batch is taken:
    ``batch = (x[idx].float() - mean) / std``.

    Examples:
        >>> s = ArraySplit(torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 0]))
        >>> s.batch(torch.tensor([2, 0]))[0]
        tensor([[4., 5.],
                [0., 1.]])
    """

    x: Tensor
    y: Tensor
    mean: Tensor | None = None
    std: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x and y must hold the same number of examples, got {self.x.shape[0]} "
                f"and {self.y.shape[0]}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Examples ``idx`` (B,) as float32 ``x`` (B, *input_shape) and int64 ``y`` (B,)."""
        x = self.x[idx].to(torch.float32)
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        return x, self.y[idx]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.batch(torch.tensor([i]))
        return x[0], y[0]

    def tensors(self) -> tuple[Tensor, Tensor]:
        """The whole split as float32 ``x`` and int64 ``y`` (materializes a float copy)."""
        return self.batch(torch.arange(len(self)))


@dataclass
class DatasetSplits:
    """A dataset: its train and test splits and what a model needs to know about it.

    Examples:
        >>> train = ArraySplit(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
        >>> test = ArraySplit(torch.zeros(2, 2), torch.tensor([0, 1]))
        >>> DatasetSplits("toy", train, test, num_classes=2, input_shape=(2,)).describe()
        'toy: 4 train / 2 test examples of shape (2,), 2 classes'
    """

    name: str
    train: ArraySplit
    test: ArraySplit
    num_classes: int
    input_shape: tuple[int, ...]  # one example, without the batch axis
    meta: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: name, sizes, shape and classes."""
        return (f"{self.name}: {len(self.train)} train / {len(self.test)} test examples of "
                f"shape {self.input_shape}, {self.num_classes} classes")


Loader = Callable[..., DatasetSplits]
_DATASETS: dict[str, tuple[Loader, str]] = {}


def register_dataset(name: str, loader: Loader, description: str) -> None:
    """Register ``loader(**options) -> DatasetSplits`` under ``name``.

    Examples:
        >>> def load_zeros(n: int = 4) -> DatasetSplits:
        ...     split = ArraySplit(torch.zeros(n, 3), torch.zeros(n, dtype=torch.long))
        ...     return DatasetSplits("zeros", split, split, num_classes=1, input_shape=(3,))
        >>> register_dataset("zeros", load_zeros, "n zero vectors, one class")
        >>> load_dataset("zeros", n=6).describe()
        'zeros: 6 train / 6 test examples of shape (3,), 1 classes'
        >>> del _DATASETS["zeros"]  # leave the registry as it was
    """
    if name in _DATASETS:
        raise ValueError(f"dataset {name!r} is already registered")
    _DATASETS[name] = (loader, description)


def list_datasets() -> dict[str, str]:
    """Registered dataset names and a one-line description of each.

    Examples:
        >>> list_datasets()["iris"]
        'UCI iris table bundled with scikit-learn'
    """
    return {name: desc for name, (_, desc) in sorted(_DATASETS.items())}


def load_dataset(name: str, **options: Any) -> DatasetSplits:
    """Load the dataset ``name`` with its ``options`` (each loader documents its own).

    Nothing is downloaded: generated and bundled datasets are built in memory, CIFAR-10 is
    read from a directory you provide (``root=`` or the ``SIGNALPROP_DATA`` variable).

    Raises:
        ValueError: an unknown name (the valid ones are listed), an option the loader
            does not take (its options are listed) or a value of the wrong type (an
            option takes the type of its default: ``as_image=True``, ``seed=3``).
        DatasetNotFoundError: the files of a user-supplied dataset are missing.

    Examples:
        >>> d = load_dataset("iris", seed=0)
        >>> d.describe()
        'iris: 120 train / 30 test examples of shape (4,), 3 classes'
    """
    if not isinstance(name, str):
        raise ValueError(f"dataset must be a name, one of {', '.join(sorted(_DATASETS))}; "
                         f"got {name!r}")
    if name not in _DATASETS:
        close = difflib.get_close_matches(name, _DATASETS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; valid: {', '.join(sorted(_DATASETS))}")
    loader, _ = _DATASETS[name]
    params = inspect.signature(loader).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), params, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"dataset {name!r} has no option {unknown[0]!r}{hint}; valid options: "
                         f"{', '.join(params) or 'none'}")
    return loader(**{k: _option(name, k, v, params[k].default) for k, v in options.items()})


def _option(dataset: str, name: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the option's default (bool, int, float, a
    sequence of ints; ``root`` a path); integral floats such as ``1e3`` become ints.
    Seeds must be >= 0."""
    def bad(what: str) -> ValueError:
        return ValueError(f"dataset {dataset!r}: option {name} must be {what}, got {value!r}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value == int(value)):
            raise bad("an integer")
        value = int(value)
        if name == "seed" and value < 0:
            raise bad("an integer >= 0")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
    elif isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad("a list of integers such as [3, 8, 8]")
        value = tuple(value)
    elif name == "root" and value is not None and not isinstance(value, (str, os.PathLike)):
        raise bad("a folder (a path)")
    return value


def standardize(train: Tensor, test: Tensor, dims: tuple[int, ...] = (0,)) -> tuple[Tensor, ...]:
    """Standardize both splits with the train split's mean and std over ``dims``.

    Features constant on the train split (std 0) are only centred.
    """
    mean = train.mean(dim=dims, keepdim=True)
    std = train.std(dim=dims, keepdim=True, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def check_fraction(name: str, value: float) -> float:
    """``value`` as a float in (0, 1), else a ValueError naming ``name``."""
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


HOLDOUTS = ("test", "validation")


def check_holdout(holdout: str, validation_fraction: float) -> None:
    """Raise ``ValueError`` unless ``holdout`` is "test" or "validation" (the latter with
    ``validation_fraction > 0``) and the fraction is 0 or in (0, 1)."""
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {', '.join(HOLDOUTS)}, got {holdout!r}")
    if validation_fraction != 0:
        check_fraction("validation_fraction", validation_fraction)
    elif holdout == "validation":
        raise ValueError("holdout='validation' needs validation_fraction > 0, got 0")


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Indices (train, test) with ``round(test_fraction * n_c)`` test examples of each class.

    Deterministic in ``seed``; both index arrays are sorted.

    Examples:
        >>> tr, te = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.5, seed=0)
        >>> len(tr), len(te)
        (4, 4)
    """
    check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(members)))
        test.append(rng.permutation(members)[:k])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def split_validation(train: ArraySplit, test: ArraySplit, validation_fraction: float,
                     holdout: str, seed: int) -> tuple[ArraySplit, ArraySplit]:
    """Hold a stratified validation split out of ``train``; return (train, held-out).

    ``round(validation_fraction * n_c)`` training examples of each class c (drawn with
    ``seed``) leave the train split; the held-out split returned is that validation split
    when ``holdout == "validation"`` (to choose hyperparameters without the test
    examples), else ``test`` unchanged. With ``validation_fraction == 0`` nothing moves.
    A split's ``mean``/``std`` (standardization on the fly) are kept as they are.

    Examples:
        >>> tr = ArraySplit(torch.arange(8.0)[:, None], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
        >>> te = ArraySplit(torch.zeros(2, 1), torch.tensor([0, 1]))
        >>> a, b = split_validation(tr, te, 0.25, "validation", seed=0)
        >>> len(a), len(b), sorted(b.y.tolist())
        (6, 2, [0, 1])
    """
    check_holdout(holdout, validation_fraction)
    if validation_fraction == 0:
        return train, test
    keep, val = stratified_split(train.y.numpy(), validation_fraction, seed)
    keep_t, val_t = torch.as_tensor(keep), torch.as_tensor(val)
    rest = ArraySplit(train.x[keep_t], train.y[keep_t], train.mean, train.std)
    if holdout == "test":
        return rest, test
    return rest, ArraySplit(train.x[val_t], train.y[val_t], train.mean, train.std)
