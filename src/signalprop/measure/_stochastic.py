"""Random draws inside the model's forward (dropout in train mode, drop-path, RReLU, noise
layers, LayerDrop): found by whether the forward advanced a random number generator.

A module's class does not tell whether its forward is random: HuggingFace layers call
``nn.functional.dropout(h, p, training=self.training)`` or pass ``dropout_p`` to
``scaled_dot_product_attention``, drop-path modules call ``torch.rand``, LayerDrop calls
Python's ``random``. What every such forward does is advance torch's global generator (CPU,
and CUDA where initialized) or Python's, and a forward that draws nothing leaves them
untouched; so the generators' states before and after the measurement's forward decide.
When a draw is found, one more forward with a hook on every module names the innermost
module whose call advanced a generator.

The ``dropout=`` option of the measurements (like ``batchnorm=``):

* ``"auto"``: measurements of one training-mode pass (``spp``, ``gradient_spp``,
  ``length_spp``, ``estimator_indicators``) keep the
  draws (dropout is part of the signal in training; the result says
  ``meta["random_draws"] = True`` and, like training, differs from call to call); the
  measurements of an operator (``jacobian_spectrum``, ``hessian_extremes``,
  ``gradient_gram``, ``gradient_confusion``) refuse them: their exact values and error
  bounds would describe one random mask and change with every call.
* ``"eval"``: every module except BatchNorm runs in eval mode for the call (dropout, also
  functional dropout gated by ``self.training``, is off); BatchNorm follows ``batchnorm=``.
* ``"error"``: refuse random draws in every measurement.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from signalprop._forward import ModelInput, buffers_restored, call_model, hooks_removed_after
from signalprop._forward import module_names as _module_names
from signalprop.measure._options import check_choice

#: ``dropout=`` of every measurement (see the module docstring).
DROPOUT_MODES = ("auto", "eval", "error")


def rng_state() -> tuple[Any, ...]:
    """The states of torch's generators (CPU, initialized CUDA devices) and Python's.

    Examples:
        >>> same_rng_state(rng_state(), rng_state())
        True
    """
    cuda = (torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() and torch.cuda.is_initialized() else [])
    return torch.random.get_rng_state(), cuda, random.getstate()


def same_rng_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two :func:`rng_state` snapshots are equal (no random draw in between)."""
    return (torch.equal(a[0], b[0]) and len(a[1]) == len(b[1])
            and all(torch.equal(u, v) for u, v in zip(a[1], b[1])) and a[2] == b[2])


def first_random_module(model: nn.Module, x: ModelInput) -> str | None:
    """Re-run the forward (no grad, buffers and generators restored) and name the innermost
    module whose call advanced a random number generator (``'<model>'`` for the model's
    own forward), or None when this forward drew nothing (the first one drew once, e.g.
    to initialize a lazy module).

    Examples:
        >>> first_random_module(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)),
        ...                     torch.ones(3, 2))
        "'1' (Dropout)"
    """
    names = _module_names(model)
    stack: list[tuple[Any, ...]] = []
    found: list[str] = []

    def pre(mod: nn.Module, args: Any) -> None:
        stack.append(rng_state())

    def post(mod: nn.Module, args: Any, out: Any) -> None:
        before = stack.pop() if stack else None
        if not found and before is not None and not same_rng_state(before, rng_state()):
            found.append(f"'{names.get(id(mod)) or '<model>'}' ({type(mod).__name__})")

    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    with hooks_removed_after() as handles, torch.random.fork_rng(devices=devices):
        state = random.getstate()
        try:
            for m in model.modules():
                handles.append(m.register_forward_pre_hook(pre))
                handles.append(m.register_forward_hook(post))
            with torch.no_grad(), buffers_restored(model):
                call_model(model, x)
        finally:
            random.setstate(state)
    return found[0] if found else None


@dataclass
class RandomDraws:
    """What :func:`dropout_policy` found: whether the forward drew random numbers."""

    model: nn.Module
    x: ModelInput
    dropout: str
    keep: bool
    what: str
    before: tuple[Any, ...]
    drew: bool = False
    checked: bool = False

    def check(self) -> None:
        """Compare the generators with their state at entry; refuse or note a draw."""
        self.checked = True
        if same_rng_state(self.before, rng_state()):
            return
        self.drew = True
        if self.keep:
            return
        where = first_random_module(self.model, self.x)
        if where is None:  # a one-off draw (lazy initialization): the forward is fixed
            self.drew = False
            return
        if self.dropout == "eval":
            raise ValueError(
                f"module {where} draws random numbers in its forward even in eval mode: "
                f"{self.what} of a randomly changing network is not defined")
        raise ValueError(
            f"module {where} draws random numbers in its forward (dropout or another "
            f"random layer in train mode): {self.what} would describe one random draw and "
            "change with every call. Call model.eval(), or pass dropout='eval' to run every "
            "module except BatchNorm in eval mode for this call")


@contextlib.contextmanager
def dropout_policy(model: nn.Module, x: ModelInput, dropout: str, what: str, *,
                   one_pass: bool = False) -> Iterator[RandomDraws]:
    """Apply a measurement's ``dropout=`` option around its forward (see the module
    docstring). ``one_pass`` measurements (statistics of one training-mode pass) keep
    random draws under ``"auto"``. The body may call ``.check()`` right after its forward
    (to refuse before expensive work); otherwise the check runs when the body ends.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
        >>> with dropout_policy(net, None, "eval", "a test") as draws:
        ...     _ = net(torch.ones(3, 2))
        >>> draws.drew, net[1].training
        (False, True)
    """
    check_choice("dropout", dropout, DROPOUT_MODES)
    switched: list[nn.Module] = []
    if dropout == "eval":
        switched = [m for m in model.modules()
                    if m.training and not isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in switched:
            object.__setattr__(m, "training", False)
    draws = RandomDraws(model, x, dropout, one_pass and dropout == "auto", what, rng_state())
    try:
        yield draws
        if not draws.checked:
            draws.check()
    finally:
        for m in switched:
            object.__setattr__(m, "training", True)
