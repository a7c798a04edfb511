"""Counting tasks (Ouellette, Pfister & Jud, 2023), generated in memory.

A sequence (a flattened grid) holds tokens ``0 .. vocab_size - 1``. With ``background``
token 0 is the background: each cell is coloured with probability ``density``, its colour
uniform over ``1 .. vocab_size - 1``. Two tasks:

* ``each``: for every token, the number of tokens of its colour in the sequence (0 for
  background tokens), as in the paper's per-cell counting;
* ``query``: a query colour is put in front of the sequence; the label is how many of the
  sequence's tokens have that colour.

Training sequences have the lengths ``train_lengths`` (default: grids of side 1 to 6, 1 to
36 tokens, as in the paper), padded to the longest with the token ``pad_id = vocab_size``
(label ``-1``: ignore); ``meta["ood"]`` holds test splits of the longer
``ood_lengths`` (default a 20 x 20 grid, 400 tokens) where counts far exceed those seen in
training. Splits are :class:`TokenSplit` (integer tokens, integer labels).

Examples:
    >>> d = load_count(num_train=64, num_test=16, num_ood=4)
    >>> d.train.x.shape, d.meta["ood"][400].x.shape, d.meta["pad_id"]
    (torch.Size([64, 36]), torch.Size([4, 400]), 10)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from signalprop.data._base import ArraySplit, DatasetSplits, register_dataset

TASKS = ("each", "query")


@dataclass
class TokenSplit(ArraySplit):
    """A split of integer token sequences: ``batch`` keeps the dtypes (no float cast).

    Examples:
        >>> s = TokenSplit(torch.tensor([[1, 2], [3, 3]]), torch.tensor([[1, 1], [2, 2]]))
        >>> s.batch(torch.tensor([1]))[0].dtype
        torch.int64
    """

    def batch(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[idx], self.y[idx]


def _check(vocab_size: int, density: float, background: bool) -> None:
    if vocab_size < 2 + int(background):
        raise ValueError(f"vocab_size must be >= {2 + int(background)} (colours besides the "
                         f"background), got {vocab_size!r}")
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density!r}")


def count_batch(
    length: int,
    batch: int,
    *,
    vocab_size: int = 10,
    density: float = 0.8,
    background: bool = True,
    task: str = "each",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``batch`` random sequences of ``length`` tokens and their count labels.

    Args:
        length: tokens per sequence (>= 1; >= 2 for "query").
        batch: number of sequences.
        vocab_size: token ids ``0 .. vocab_size - 1``.
        density: probability that a cell is coloured (with ``background``).
        background: token 0 is an uncounted background (else every token is a colour,
            drawn uniformly).
        task: "each" (labels (B, length): the count of each token's colour, 0 for the
            background) or "query" (a query colour is put in front, so x is
            (B, 1 + length); labels (B,): how many of the ``length`` tokens after it have
            its colour).
        generator: the random stream.

    Returns:
        ``(x, y)``: int64 tokens (B, length) and int64 labels.

    Examples:
        >>> x, y = count_batch(6, 2, generator=torch.Generator().manual_seed(0))
        >>> x.shape, y.shape, bool((y == (x[:, :, None] == x[:, None, :]).sum(-1)
        ...                            * (x > 0)).all())
        (torch.Size([2, 6]), torch.Size([2, 6]), True)
    """
    _check(vocab_size, density, background)
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if length < 1 or batch < 1:
        raise ValueError(f"length and batch must be >= 1, got length={length!r}, "
                         f"batch={batch!r}")
    first = 1 if background else 0
    extra = int(task == "query")
    colour = torch.randint(first, vocab_size, (batch, extra + length), generator=generator)
    if background:
        coloured = torch.rand(batch, extra + length, generator=generator) < density
        coloured[:, 0] |= bool(extra)  # the query is a colour
        colour = torch.where(coloured, colour, torch.zeros_like(colour))
    counts = torch.zeros(batch, vocab_size, dtype=torch.int64)
    counts.scatter_add_(1, colour, torch.ones_like(colour))  # (B, V) occurrences per colour
    if task == "query":
        return colour, counts.gather(1, colour[:, :1]).squeeze(1) - 1
    y = counts.gather(1, colour)
    if background:
        y = torch.where(colour == 0, torch.zeros_like(y), y)
    return colour, y


def _padded(lengths: Tensor, pad: int, task: str, gen: torch.Generator,
            **kw: object) -> TokenSplit:
    """Sequences of the given lengths, padded to the longest (label -1 on padding)."""
    extra = int(task == "query")
    n, width = lengths.numel(), int(lengths.max()) + extra
    x = torch.full((n, width), pad, dtype=torch.int64)
    y = (torch.full((n,), -1, dtype=torch.int64) if task == "query"
         else torch.full((n, width), -1, dtype=torch.int64))
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero().squeeze(1)
        xs, ys = count_batch(int(length), rows.numel(), task=task, generator=gen, **kw)
        x[rows, : extra + length] = xs
        if task == "query":
            y[rows] = ys
        else:
            y[rows, :length] = ys
    return TokenSplit(x, y)


def load_count(
    task: str = "each",
    vocab_size: int = 10,
    density: float = 0.8,
    background: bool = True,
    train_lengths: Sequence[int] = (1, 4, 9, 16, 25, 36),
    ood_lengths: Sequence[int] = (400,),
    num_train: int = 8192,
    num_test: int = 1024,
    num_ood: int = 256,
    seed: int = 0,
) -> DatasetSplits:
    """The counting task: train and test splits at ``train_lengths``, out-of-distribution
    splits at ``ood_lengths`` in ``meta["ood"]`` (see the module docstring).

    Args:
        task: "each" or "query".
        vocab_size: colours (token 0 the background when ``background``).
        density: probability that a cell is coloured.
        background: token 0 is an uncounted background.
        train_lengths: lengths of training and test sequences, drawn uniformly per example.
        ood_lengths: lengths of the out-of-distribution splits.
        num_train: sequences in the training split.
        num_test: sequences in the (in-distribution) test split.
        num_ood: sequences per out-of-distribution length.
        seed: seeds every split (each from its own stream).

    Returns:
        ``DatasetSplits`` of :class:`TokenSplit` (x int64 (N, max length) padded with
        ``pad_id = vocab_size``; y int64 counts, -1 on padding); ``num_classes`` is 0 (the
        labels are counts, a regression target); ``meta``: ``pad_id``, ``ood`` (length ->
        TokenSplit), ``train_lengths``, ``task``.

    Examples:
        >>> d = load_count(task="query", num_train=8, num_test=4, num_ood=2)
        >>> d.train.y.shape, d.describe()
        (torch.Size([8]), 'count: 8 train / 4 test examples of shape (37,), 0 classes')
    """
    _check(vocab_size, density, background)
    lengths = sorted({int(v) for v in train_lengths})
    if not lengths or lengths[0] < 1 or not ood_lengths or min(ood_lengths) < 1:
        raise ValueError(f"train_lengths and ood_lengths must be lengths >= 1, got "
                         f"{tuple(train_lengths)!r} and {tuple(ood_lengths)!r}")
    if min(num_train, num_test, num_ood) < 1:
        raise ValueError(f"num_train, num_test and num_ood must be >= 1, got "
                         f"{num_train}, {num_test}, {num_ood}")
    kw = {"vocab_size": vocab_size, "density": density, "background": background}
    pad = vocab_size
    splits = []
    for k, n in enumerate((num_train, num_test)):
        gen = torch.Generator().manual_seed(seed * 1009 + k)
        pick = torch.randint(len(lengths), (n,), generator=gen)
        splits.append(_padded(torch.tensor(lengths)[pick], pad, task, gen, **kw))
    ood = {}
    for k, length in enumerate(sorted({int(v) for v in ood_lengths})):
        gen = torch.Generator().manual_seed(seed * 1009 + 2 + k)
        ood[length] = TokenSplit(*count_batch(length, num_ood, task=task, generator=gen, **kw))
    shape = (lengths[-1] + int(task == "query"),)
    return DatasetSplits("count", splits[0], splits[1], 0, shape,
                         meta={"pad_id": pad, "ood": ood, "train_lengths": lengths,
                               "task": task, "seed": seed, **kw})


register_dataset("count", load_count,
                 "per-token (or queried-token) counting in sequences / flattened grids, "
                 "trained short and tested long (Ouellette et al. 2023)")
