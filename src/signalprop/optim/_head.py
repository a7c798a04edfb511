"""Find a model's classifier from its module graph: the last ``nn.Linear`` a forward applies.

Parameter order says nothing about where a layer runs (a head may be registered first,
an auxiliary projection last), so the head is found by watching a forward: a hook on every
``nn.Linear`` records the order of calls, and the last one called is the classifier.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from signalprop._forward import ModelInput, buffers_restored, call_model, module_names


class NoLinearHeadError(ValueError):
    """The model applies no ``nn.Linear`` layer, so it has no classifier to exclude.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        >>> try:
        ...     find_classifier(net, torch.randn(1, 3, 2, 2))
        ... except NoLinearHeadError as err:
        ...     print(err)
        cannot find the classifier of Sequential: it has no nn.Linear layer. AGC never clips
        the final classifier; pass exclude=[names of its parameters or module] (or
        exclude=() to clip every parameter)
    """


def _no_head_message(model: nn.Module, why: str) -> str:
    return (f"cannot find the classifier of {type(model).__name__}: {why}. AGC never clips the "
            "final classifier; pass exclude=[names of its parameters or module] (or "
            "exclude=() to clip every parameter)")


class HeadWatcher:
    """Records the ``nn.Linear`` layers a model applies, in order, during its forwards.

    ``head()`` returns (name, module) of the last Linear applied in the most recent forward
    of the root module; ``close()`` removes the hooks.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = module_names(model)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise NoLinearHeadError(_no_head_message(model, "it has no nn.Linear layer"))
        self.calls: list[nn.Module] = []
        self.handles: list[Any] = [model.register_forward_pre_hook(self._reset)]
        for m in linears:
            self.handles.append(m.register_forward_hook(self._record))

    def _reset(self, module: nn.Module, args: Any) -> None:
        self.calls = []

    def _record(self, module: nn.Module, args: Any, out: Any) -> None:
        self.calls.append(module)

    def head(self) -> tuple[str, nn.Module]:
        if not self.calls:
            raise NoLinearHeadError(_no_head_message(
                self.model, "no forward has applied an nn.Linear yet (call the model once "
                "before the first step, or give example_input)"))
        last = self.calls[-1]
        return self.names.get(id(last), ""), last

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def find_classifier(model: nn.Module, x: ModelInput) -> tuple[str, nn.Linear]:
    """(name, module) of the last ``nn.Linear`` applied by ``model(x)``.

    The forward runs under ``torch.no_grad()`` with buffers restored afterwards.

    Raises:
        ValueError: the model applies no ``nn.Linear``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> find_classifier(net, torch.randn(1, 3))[0]
        '2'
    """
    watcher = HeadWatcher(model)
    try:
        with torch.no_grad(), buffers_restored(model):
            call_model(model, x)
        name, head = watcher.head()
    finally:
        watcher.close()
    return name, head  # type: ignore[return-value]
