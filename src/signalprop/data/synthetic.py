"""Synthetic Gaussian data: i.i.d. standard normal inputs labelled by a random linear teacher.

    x ~ N(0, I),   y = argmax_k (W x)_k,   W_kj ~ N(0, 1 / D)

with D the number of input values. The classes are learnable (linearly separable) and,
for large D, close to balanced; inputs have exactly the statistics signal propagation
theory assumes at the first layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from signalprop.data._base import ArraySplit, DatasetSplits, register_dataset


def load_gaussian(
    input_shape: Sequence[int] = (32,),
    num_classes: int = 10,
    num_train: int = 1024,
    num_test: int = 256,
    seed: int = 0,
) -> DatasetSplits:
    """Gaussian inputs of ``input_shape`` with labels from a seeded random linear teacher.

    Args:
        input_shape: one example's shape, e.g. (32,) or (3, 8, 8).
        num_classes: number of teacher outputs (>= 2).
        num_train: training examples.
        num_test: test examples.
        seed: seeds the teacher and both splits (train and test draw from separate streams).

    Returns:
        ``DatasetSplits`` with float32 x (N, *input_shape) and int64 y (N,).

    Examples:
        >>> d = load_gaussian((3, 4, 4), num_classes=3, num_train=8, num_test=4)
        >>> d.train.x.shape, d.test.y.shape
        (torch.Size([8, 3, 4, 4]), torch.Size([4]))
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be positive sizes, got {tuple(input_shape)!r}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")
    if int(num_train) < 1 or int(num_test) < 1:
        raise ValueError(f"num_train and num_test must be >= 1, got {num_train!r}, {num_test!r}")
    dim = math.prod(shape)
    gen = torch.Generator().manual_seed(int(seed))
    teacher = torch.randn(int(num_classes), dim, generator=gen) / math.sqrt(dim)

    def draw(n: int) -> ArraySplit:
        x = torch.randn(n, dim, generator=gen)
        y = (x @ teacher.T).argmax(dim=1)
        return ArraySplit(x.reshape(n, *shape), y)

    train = draw(int(num_train))
    test = draw(int(num_test))
    return DatasetSplits("gaussian", train, test, int(num_classes), shape,
                         meta={"seed": seed, "teacher": "linear argmax"})


register_dataset("gaussian", load_gaussian,
                 "Gaussian inputs labelled by a random linear teacher (any input_shape)")
