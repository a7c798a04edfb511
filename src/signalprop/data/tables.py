"""scikit-learn's bundled datasets: the 8x8 digits and small UCI tables.

These ship inside scikit-learn (nothing is downloaded). Each is split once, stratified by
class, with a seeded generator, and standardized with the train split's statistics:

    x' = (x - mean_train) / std_train

per feature for tables and flat digits; for digits as 1x8x8 images one mean and one std
over all pixels, so the spatial structure a convolution sees is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from signalprop.data._base import (
    ArraySplit,
    DatasetSplits,
    check_fraction,
    check_holdout,
    register_dataset,
    standardize,
    stratified_split,
)

# name -> scikit-learn loader function name (all bundled with the package)
TABLES = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
}


def _sklearn_datasets():  # noqa: ANN202 -- a module
    try:
        import sklearn.datasets
    except ImportError:
        raise ImportError(
            "scikit-learn's bundled datasets need scikit-learn: "
            "pip install 'signalprop[data]' (or pip install scikit-learn)"
        ) from None
    return sklearn.datasets


def _split_tensors(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, dims: tuple[int, ...]
) -> tuple[ArraySplit, ArraySplit]:
    tr, te = stratified_split(y, test_fraction, seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    x_tr, x_te = standardize(xt[tr], xt[te], dims)
    return ArraySplit(x_tr, yt[tr]), ArraySplit(x_te, yt[te])


def load_table(name: str, seed: int = 0, test_fraction: float = 0.2) -> DatasetSplits:
    """A UCI table bundled with scikit-learn (``TABLES``: iris, wine, breast_cancer).

    Args:
        name: one of ``TABLES``.
        seed: seeds the stratified train/test split.
        test_fraction: share of each class held out for testing.

    Returns:
        ``DatasetSplits`` with x (N, F) float32 standardized per feature, y (N,) int64.

    Examples:
        >>> load_table("wine").describe()
        'wine: 142 train / 36 test examples of shape (13,), 3 classes'

    References:
        Dua & Graff, UCI Machine Learning Repository; scikit-learn ``sklearn.datasets``.
    """
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; valid: {', '.join(TABLES)}")
    bunch = getattr(_sklearn_datasets(), TABLES[name])()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)
    train, test = _split_tensors(x, y, test_fraction, seed, dims=(0,))
    return DatasetSplits(name, train, test, int(y.max()) + 1, (x.shape[1],),
                         meta={"seed": seed, "test_fraction": test_fraction,
                               "source": f"sklearn.datasets.{TABLES[name]}"})


def digits_indices(seed: int = 0, test_fraction: float = 0.2, validation_fraction: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices into scikit-learn's digits of the (train, validation, test) examples.

    The test examples are :func:`stratified_split`'s (the same whatever
    ``validation_fraction`` is); the validation examples are a second stratified split of
    the remaining ones, seeded with ``seed + 1``; train is what is left. All sorted.

    Examples:
        >>> tr, va, te = digits_indices(validation_fraction=0.2)
        >>> len(tr), len(va), len(te)
        (1151, 287, 359)
    """
    y = np.asarray(_sklearn_datasets().load_digits().target)
    return _three_way_split(y, seed, test_fraction, validation_fraction)


def _three_way_split(y: np.ndarray, seed: int, test_fraction: float,
                     validation_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train, test = stratified_split(y, test_fraction, seed)
    if validation_fraction == 0:
        return train, np.zeros(0, dtype=train.dtype), test
    check_fraction("validation_fraction", validation_fraction)
    keep, val = stratified_split(y[train], validation_fraction, seed + 1)
    return train[keep], train[val], test


def load_digits(seed: int = 0, test_fraction: float = 0.2, as_image: bool = False,
                validation_fraction: float = 0.0, holdout: str = "test") -> DatasetSplits:
    """scikit-learn's 1797 handwritten digits, 8x8 pixels with values 0..16, 10 classes.

    Args:
        seed: seeds the stratified train/test (and train/validation) split.
        test_fraction: share of each class held out for testing.
        as_image: return x as (N, 1, 8, 8) standardized with one mean and std over all
            pixels; otherwise (N, 64) standardized per pixel.
        validation_fraction: share of each class of the non-test examples held out for
            validation (0: none); the train split is then the rest (see
            :func:`digits_indices`) and standardization uses its statistics only.
        holdout: the held-out split returned as ``test``: ``"test"`` or ``"validation"``
            (which needs ``validation_fraction > 0``), e.g. to choose hyperparameters
            without looking at the test examples.

    Examples:
        >>> load_digits(as_image=True).input_shape
        (1, 8, 8)
        >>> load_digits(validation_fraction=0.2, holdout="validation").describe()
        'digits: 1151 train / 287 test examples of shape (64,), 10 classes'
    """
    check_holdout(holdout, validation_fraction)
    bunch = _sklearn_datasets().load_digits()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)
    if as_image:
        x = x.reshape(-1, 1, 8, 8)
    dims = (0, 1, 2, 3) if as_image else (0,)
    tr, va, te = _three_way_split(y, seed, test_fraction, validation_fraction)
    held = va if holdout == "validation" else te
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    x_tr, x_held = standardize(xt[tr], xt[held], dims)
    return DatasetSplits("digits", ArraySplit(x_tr, yt[tr]), ArraySplit(x_held, yt[held]), 10,
                         tuple(x.shape[1:]),
                         meta={"seed": seed, "test_fraction": test_fraction,
                               "as_image": as_image, "validation_fraction": validation_fraction,
                               "holdout": holdout, "source": "sklearn.datasets.load_digits"})


def _table_loader(name: str):  # noqa: ANN202 -- a closure with the loader's signature
    def load(seed: int = 0, test_fraction: float = 0.2) -> DatasetSplits:
        return load_table(name, seed=seed, test_fraction=test_fraction)

    return load


register_dataset("digits", load_digits,
                 "scikit-learn's 8x8 digits (64 features, or 1x8x8 with as_image=True)")
for _name in TABLES:
    register_dataset(_name, _table_loader(_name), f"UCI {_name} table bundled with scikit-learn")
