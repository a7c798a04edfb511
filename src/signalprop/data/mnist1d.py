"""MNIST-1D (Greydanus 2020), generated in memory by the ``mnist1d`` package.

Ten 1-D digit templates of length 12 are padded, scaled, translated, sheared, mixed with
correlated and i.i.d. noise and resampled to 40 points; the whole set is then centred and
scaled to unit standard deviation. The ``mnist1d`` package can also *download* a pickled
copy (its ``get_dataset``); signalprop never calls that path, only the generator
``mnist1d.data.make_dataset``, which runs offline from its arguments.

NOTE: the package's generator seeds NumPy's and Python's global random generators; this
loader saves both states and restores them afterwards, so loading MNIST-1D does not
change any other random stream in the process.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import torch

from signalprop.data._base import (
    ArraySplit,
    DatasetSplits,
    check_fraction,
    register_dataset,
    split_validation,
)

# The package's defaults (mnist1d.data.get_dataset_args): 5000 examples, 80% for training,
# seed 42 -- these reproduce the published MNIST-1D set.
DEFAULT_SEED = 42
DEFAULT_SAMPLES = 5000
LENGTH = 40


@functools.lru_cache(maxsize=4)
def _generate(seed: int, num_samples: int, train_split: float, shuffle_seq: bool
              ) -> tuple[np.ndarray, ...]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ImportError("MNIST-1D needs the mnist1d package: pip install 'signalprop[data]' "
                          "(or pip install mnist1d)") from None
    args = get_dataset_args()  # an ObjectView over a fresh dict
    args.seed, args.num_samples = int(seed), int(num_samples)
    args.train_split, args.shuffle_seq = float(train_split), bool(shuffle_seq)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002 -- restoring the legacy global state
        random.setstate(py_state)
    return d["x"], d["y"], d["x_test"], d["y_test"]


def load_mnist1d(
    seed: int = DEFAULT_SEED,
    num_samples: int = DEFAULT_SAMPLES,
    train_split: float = 0.8,
    shuffle_seq: bool = False,
    as_signal: bool = False,
    validation_fraction: float = 0.0,
    holdout: str = "test",
) -> DatasetSplits:
    """MNIST-1D: ``num_samples`` 1-D signals of length 40 in 10 balanced classes.

    Args:
        seed: the generator's seed (42, with the other defaults, gives the published set).
        num_samples: total examples, train and test together (a multiple of 10 keeps the
            classes balanced: each class gets ``num_samples // 10``).
        train_split: share of the (shuffled) examples used for training.
        shuffle_seq: apply one fixed random permutation to the 40 positions (the paper's
            test of spatial inductive bias).
        as_signal: return x as (N, 1, 40) for 1-D convolutions instead of (N, 40).
        validation_fraction: share of each class of the training examples held out for
            validation (0: none; drawn with ``seed + 1``); the train split is the rest.
        holdout: the held-out split returned as ``test``: ``"test"`` or ``"validation"``
            (which needs ``validation_fraction > 0``), e.g. to choose hyperparameters
            without looking at the test examples.

    Returns:
        ``DatasetSplits`` with float32 x (already zero-mean, unit-std over the whole set)
        and int64 y.

    Examples:
        >>> d = load_mnist1d(num_samples=100)
        >>> d.describe()
        'mnist1d: 80 train / 20 test examples of shape (40,), 10 classes'
        >>> load_mnist1d(validation_fraction=0.2, holdout="validation").describe()
        'mnist1d: 3200 train / 800 test examples of shape (40,), 10 classes'

    References:
        Greydanus, "Scaling down deep learning", arXiv 2011.14439 (2020).
    """
    check_fraction("train_split", train_split)
    if int(num_samples) < 10:
        raise ValueError(f"num_samples must be >= 10 (one per class), got {num_samples!r}")
    x, y, x_test, y_test = _generate(int(seed), int(num_samples), float(train_split),
                                     bool(shuffle_seq))
    shape = (1, LENGTH) if as_signal else (LENGTH,)

    def split(xs: np.ndarray, ys: np.ndarray) -> ArraySplit:
        xt = torch.tensor(xs, dtype=torch.float32).reshape(-1, *shape)
        return ArraySplit(xt, torch.tensor(ys, dtype=torch.int64))

    train, held = split_validation(split(x, y), split(x_test, y_test), validation_fraction,
                                   holdout, int(seed) + 1)
    return DatasetSplits("mnist1d", train, held, 10, shape,
                         meta={"seed": seed, "num_samples": num_samples,
                               "train_split": train_split, "shuffle_seq": shuffle_seq,
                               "validation_fraction": validation_fraction,
                               "holdout": holdout, "source": "mnist1d.data.make_dataset"})


register_dataset("mnist1d", load_mnist1d, "MNIST-1D, generated offline by the mnist1d package")
