"""Per-example losses and the checks every per-example gradient measurement shares.

The loss of example i is what ``loss_fn`` returns for a batch holding only example i:
``l_i = loss_fn(out[i:i+1], y[i:i+1])``. That is independent of the reduction
(``mean`` and ``sum`` agree on a batch of one; ``none`` returns one value, which is
taken). It is evaluated for all examples at once with ``torch.func.vmap`` over batches of
one; a ``loss_fn`` that vmap cannot trace (``.item()``, data-dependent branches) is called
once per example instead, with the same result.

Per-example gradients from one batched backward are only meaningful when the model
treats examples independently. BatchNorm in train mode does not (its batch statistics
couple all examples), so it is refused unless the caller asks for eval-mode statistics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils import _pytree as pytree

from signalprop._forward import module_names, unique_modules
from signalprop.measure._inputs import batch_size as batch_size  # re-exported
from signalprop.measure._inputs import check_finite

LossFn = Callable[..., Tensor]
#: ``batchnorm=`` of every measurement: "auto" keeps the model's mode where batch statistics
#: leave the measurement defined and refuses them where they do not (per-example ones).
BATCHNORM_MODES = ("auto", "eval", "error")


def any_tensor(obj: Any) -> Tensor | None:
    """The first tensor (of any dtype) in a nested input: tensor, tuple, list or dict."""
    leaves = pytree.tree_leaves(obj)
    return next((t for t in leaves if isinstance(t, Tensor)), None)


def check_targets(y: Any, b: int) -> None:
    """``y`` (None or a nested structure of tensors) must have ``b`` examples."""
    if y is None:
        return
    t = any_tensor(y)
    if t is None or t.dim() == 0 or t.shape[0] != b:
        shape = None if t is None else tuple(t.shape)
        raise ValueError(f"y must have the batch size of x ({b}) on its first axis, "
                         f"got shape {shape}")
    check_finite(y, "y")


def check_loss_fn(loss_fn: Any) -> None:
    """A measurement that needs a loss got a callable one."""
    if loss_fn is None:
        raise ValueError("loss_fn is required: pass loss_fn=..., e.g. "
                         "loss_fn=torch.nn.CrossEntropyLoss()")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")


def batch_loss(loss_fn: LossFn, out: Any, y: Any) -> Tensor:
    """``loss_fn(out, y)`` (``loss_fn(out)`` when ``y`` is None) as a 0-d tensor."""
    loss = loss_fn(out, y) if y is not None else loss_fn(out)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar, got {shape}")
    return loss.reshape(())


def trainable_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm modules in train mode, in ``model.modules()`` order.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2)))
        >>> trainable_batchnorms(net) == [net[1][0]]
        True
    """
    batchnorm = nn.modules.batchnorm._BatchNorm
    return [m for m in unique_modules(model) if isinstance(m, batchnorm) and m.training]


@contextlib.contextmanager
def batchnorm_policy(model: nn.Module, batchnorm: str, per_example: bool = True
                     ) -> Iterator[None]:
    """Apply a measurement's ``batchnorm=`` option to the BatchNorm modules in train mode.

    ``"error"`` refuses them; ``"eval"`` switches them to eval mode (running statistics)
    for the duration and back afterwards (nothing else changes mode); ``"auto"`` refuses
    them when the measurement is ``per_example`` (batch statistics couple the examples)
    and otherwise leaves the model as it is.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> with batchnorm_policy(net, "eval"):
        ...     net[1].training
        False
        >>> net[1].training
        True
    """
    if batchnorm not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}")
    if batchnorm == "auto" and not per_example:
        yield  # the model as it is: no walk over its modules needed
        return
    bns = trainable_batchnorms(model)
    if bns and batchnorm != "eval":
        name_of = module_names(model)  # names only for the message
        names = ", ".join(f"'{name_of[id(m)]}'" for m in bns[:3]) + (
            " ..." if len(bns) > 3 else "")
        why = ("their batch statistics couple the examples, so per-example quantities are "
               "undefined" if per_example else "batchnorm='error' refuses them")
        raise ValueError(
            f"model has {len(bns)} BatchNorm module(s) in train mode ({names}): {why}. Pass "
            "batchnorm='eval' to use the running statistics instead, or call model.eval()")
    for m in bns:
        m.train(False)
    try:
        yield
    finally:
        for m in bns:
            m.train(True)


def _batched_leaves(tree: Any, b: int) -> tuple[list[Any], Any, list[int | None]]:
    leaves, spec = pytree.tree_flatten(tree)
    dims = [0 if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == b else None
            for t in leaves]
    return leaves, spec, dims


class _LossShapeError(ValueError):
    pass


def _one(value: Any, where: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise _LossShapeError(f"loss_fn must return a tensor, got {type(value).__name__} {where}")
    if value.numel() != 1:
        raise _LossShapeError(
            f"loss_fn must return a scalar for a batch of one example, got shape "
            f"{tuple(value.shape)} {where}; use reduction='mean' or 'sum'")
    return value.reshape(())


def per_example_losses(loss_fn: LossFn, out: Any, y: Any, b: int) -> Tensor:
    """``(b,)`` tensor of l_i = loss_fn(out[i:i+1], y[i:i+1]) (``loss_fn(out[i:i+1])`` when
    ``y`` is None), differentiable with respect to ``out``.

    Raises:
        ValueError: ``loss_fn`` fails on a batch of one, or does not return one number.
    """
    args = (out,) if y is None else (out, y)
    leaves, spec, dims = _batched_leaves(args, b)
    if all(d is None for d in dims):
        raise ValueError(f"the model output has no axis of the batch size {b} to split into "
                         "examples")

    def single(*ls: Any) -> Tensor:
        ls = [t.unsqueeze(0) if d == 0 else t for t, d in zip(ls, dims)]
        return _one(loss_fn(*pytree.tree_unflatten(ls, spec)), "for a batch of one")

    try:
        return torch.func.vmap(single, in_dims=tuple(dims))(*leaves)
    except _LossShapeError:
        raise
    except Exception:  # noqa: BLE001 -- vmap cannot trace this loss_fn: loop instead
        pass
    losses = []
    for i in range(b):
        ls = [t[i : i + 1] if d == 0 else t for t, d in zip(leaves, dims)]
        try:
            value = loss_fn(*pytree.tree_unflatten(ls, spec))
        except Exception as e:  # noqa: BLE001 -- reported with the example that failed
            raise ValueError(f"loss_fn failed on example {i} alone (a batch of one): "
                             f"{type(e).__name__}: {e}") from e
        losses.append(_one(value, f"for example {i}"))
    return torch.stack(losses)
