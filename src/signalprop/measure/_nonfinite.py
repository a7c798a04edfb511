"""Where NaN/Inf first appear: a model output, a loss, or a gradient is never returned
silently non-finite; the error names the first module that produced such values."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils import _pytree as pytree

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    call_model,
    hooks_removed_after,
    module_names,
)


class NonFiniteError(ValueError):
    """A forward output, a loss or a gradient held NaN/Inf; the message says where first.

    Examples:
        >>> import signalprop as sp
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
        >>> with torch.no_grad():
        ...     model[1].bias[0] = float("nan")
        >>> try:
        ...     sp.gradient_gram(model, torch.randn(3, 4), torch.tensor([0, 1, 0]),
        ...                      loss_fn=nn.CrossEntropyLoss())
        ... except NonFiniteError as err:
        ...     print(err)
        the loss is NaN/Inf for 3 of 3 examples (first: example 0); the model output is first
        non-finite in module '1' (Linear)
    """


def _count_nonfinite(obj: Any) -> int:
    n = 0
    for t in pytree.tree_leaves(obj):
        if isinstance(t, Tensor) and t.is_floating_point():
            n += int(t.numel() - torch.isfinite(t).sum())
    return n


def first_nonfinite_module(model: nn.Module, x: ModelInput) -> str | None:
    """Re-run the forward (no grad, buffers restored) and name the first module whose
    output holds NaN/Inf, in order of completion (an inner module before its parent)."""
    names = module_names(model)
    found: list[str] = []

    def hook(mod: nn.Module, args: Any, out: Any) -> None:
        if not found and _count_nonfinite(out):
            found.append(f"'{names.get(id(mod)) or '<model>'}' ({type(mod).__name__})")

    with hooks_removed_after() as handles:
        for m in model.modules():
            handles.append(m.register_forward_hook(hook))
        with torch.no_grad(), buffers_restored(model):
            call_model(model, x)
    return found[0] if found else None


def check_losses(losses: Tensor, model: nn.Module, x: ModelInput) -> None:
    """Raise :class:`NonFiniteError` if any per-example loss is NaN/Inf, naming the first
    module whose forward output was non-finite (or the loss itself)."""
    bad = torch.nonzero(~torch.isfinite(losses.detach().reshape(-1))).flatten()
    if bad.numel() == 0:
        return
    where = first_nonfinite_module(model, x)
    origin = (f"the model output is first non-finite in module {where}" if where else
              "the model output is finite, so loss_fn produced them")
    raise NonFiniteError(
        f"the loss is NaN/Inf for {bad.numel()} of {losses.numel()} examples (first: example "
        f"{int(bad[0])}); {origin}")
