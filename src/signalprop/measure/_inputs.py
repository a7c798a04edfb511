"""Checks of a measurement's input batch before anything runs.

A measurement needs a batch axis first: the first tensor of ``x`` (a tensor, a tuple of
positional inputs or a dict of keyword inputs) gives the batch size N. Refused, with an
error naming ``x``:

* no tensor, a 0-d tensor, or an empty batch (N = 0: every statistic would be NaN);
* a 1-D floating-point first tensor, (F,): that is one unbatched example (or N scalars)
  and the measurement cannot tell which; the message says how to add the batch axis. A
  1-D integer tensor (N,) is a batch of one token id or class index per example and is
  accepted;
* NaN/Inf anywhere in a floating-point tensor of ``x`` (or of ``y``): they would travel
  through the model and come back as a diagnosis of the model (a NaN example moves the
  outputs of the others by NaN, which reads as "batch not independent").
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

from signalprop.measure._nonfinite import NonFiniteError


def _tensors(obj: Any) -> list[Tensor]:
    return [t for t in pytree.tree_leaves(obj) if isinstance(t, Tensor)]


def check_finite(obj: Any, name: str) -> None:
    """Raise :class:`NonFiniteError` naming ``name`` if a floating tensor in ``obj`` holds
    NaN/Inf (how many, and the index of the first).

    Examples:
        >>> check_finite(torch.ones(2, 3), "x")  # finite: nothing happens
    """
    for i, t in enumerate(_tensors(obj)):
        if not (t.is_floating_point() or t.is_complex()):
            continue
        bad = ~torch.isfinite(t.detach())
        if bool(bad.any()):
            first = tuple(int(v) for v in torch.nonzero(bad)[0])
            where = name if isinstance(obj, Tensor) else f"{name} (tensor {i})"
            raise NonFiniteError(
                f"{where} holds {int(bad.sum())} NaN/Inf value(s) of {t.numel()} (first at "
                f"index {first}); measurements need a finite input, so they would report the "
                "input's NaN as the model's: remove or replace those examples")


def batch_size(x: Any, name: str = "x") -> int:
    """The batch size N of ``x`` (its first tensor's leading axis) after checking that
    ``x`` is a non-empty, batch-first, finite input (see the module docstring).

    Examples:
        >>> batch_size(torch.zeros(5, 3))
        5
        >>> batch_size(torch.zeros(3))
        Traceback (most recent call last):
        ...
        ValueError: x has shape (3,), with no batch axis: ...
    """
    tensors = _tensors(x)
    t = tensors[0] if tensors else None
    if t is None or t.dim() == 0:
        raise ValueError(f"{name} must hold a tensor with a leading batch axis (N, ...), got "
                         f"{type(x).__name__ if t is None else 'a 0-d tensor'}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}); "
                         "at least one example is needed")
    if t.dim() == 1 and t.is_floating_point():
        n = t.shape[0]
        raise ValueError(
            f"{name} has shape ({n},), with no batch axis: measurements take a batch (N, ...) "
            f"with the examples on axis 0; pass {name}.unsqueeze(0) for one example of {n} "
            f"features, or {name}.unsqueeze(1) for {n} scalar examples")
    check_finite(x, name)
    return int(t.shape[0])


class SingleValues:
    """Notes the blocks whose output (or gradient) has one value per channel: a batch of
    one example and no axis besides the channels, so a variance over it is 0 by
    construction; :meth:`warn` says so, naming the batch size and the blocks.

    Examples:
        >>> s = SingleValues(channel_dim=1)
        >>> s.note("fc", torch.zeros(1, 8)); s.note("conv", torch.zeros(1, 8, 4, 4))
        >>> s.names
        ['fc']
    """

    def __init__(self, channel_dim: int) -> None:
        self.channel_dim = channel_dim
        self.names: list[str] = []
        self.shape: tuple[int, ...] = ()

    def note(self, name: str, y: Tensor) -> None:
        if y.dim() >= 2 and y.numel() == y.shape[self.channel_dim % y.dim()]:
            if name not in self.names:
                self.names.append(name)
                self.shape = self.shape or tuple(y.shape)

    def warn(self, b: int, what: str) -> None:
        if not self.names:
            return
        shown = ", ".join(f"'{n}'" for n in self.names[:3]) + (" ..." if len(self.names) > 3
                                                               else "")
        warnings.warn(
            f"{what}: x has batch size {b} and {len(self.names)} block(s) ({shown}) have one "
            f"value per channel (shape {self.shape}): their variance is 0 by construction, "
            "not a property of the model; use a batch of at least 2 examples", stacklevel=3)
