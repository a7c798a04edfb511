"""Running a model forward for measurement: inputs, hooks that never linger, and errors
that name the module where the forward failed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

ModelInput = Tensor | tuple[Any, ...] | list[Any] | dict[str, Any]


class ForwardError(RuntimeError):
    """The model's forward raised; the message names the innermost failing module.

    Examples:
        >>> import signalprop as sp
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(5, 2))  # 8 features reach 5 inputs
        >>> try:
        ...     sp.spp(model, torch.randn(3, 4))
        ... except ForwardError as err:
        ...     print(err)
        forward failed in module '1' (Linear), which received input of shape (3, 8): ...
    """


def first_tensor(obj: Any, depth: int = 3) -> Tensor | None:
    """The first floating-point tensor in a (nested) output: tensor, tuple, list or dict."""
    if isinstance(obj, Tensor):
        return obj if obj.is_floating_point() else None
    if depth == 0:
        return None
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) else ()
    for item in items:
        t = first_tensor(item, depth - 1)
        if t is not None:
            return t
    return None


def module_names(model: nn.Module) -> dict[int, str]:
    """id(module) -> its first qualified name (a shared module keeps its first name)."""
    names: dict[int, str] = {}
    for n, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), n)
    return names


def call_model(model: nn.Module, x: ModelInput) -> Any:
    """``model(x)``, ``model(*x)`` for a tuple/list, ``model(**x)`` for a dict."""
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


def describe_input(args: Any) -> str:
    shapes = []
    for a in args if isinstance(args, (tuple, list)) else (args,):
        if isinstance(a, Tensor):
            shapes.append(str(tuple(a.shape)))
        else:
            shapes.append(type(a).__name__)
    return ", ".join(shapes) if shapes else "no arguments"


@contextlib.contextmanager
def hooks_removed_after() -> Iterator[list[Any]]:
    """Collects hook handles and removes every one on exit, even when the body raises."""
    handles: list[Any] = []
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()


def unique_modules(model: nn.Module) -> list[nn.Module]:
    """Every module of ``model`` once, in ``model.modules()`` order, from one iterative walk
    (``modules()``' nested generators cost milliseconds on models with thousands of modules,
    which the measurements pay on every call).

    Examples:
        >>> shared = nn.ReLU()
        >>> net = nn.Sequential(nn.Linear(2, 2), shared, nn.Sequential(shared, nn.Tanh()))
        >>> unique_modules(net) == list(net.modules())
        True
    """
    found: list[nn.Module] = []
    seen: set[int] = set()
    stack = [model]
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        found.append(m)
        if m._modules:
            stack.extend(c for c in reversed(m._modules.values()) if c is not None)
    return found


@contextlib.contextmanager
def buffers_restored(model: nn.Module) -> Iterator[None]:
    """Leave every buffer (BatchNorm running statistics, ...) as it was.

    BatchNorm layers in train mode stop tracking running statistics for the duration
    (their output, from batch statistics, is unchanged), so nothing is copied for them;
    the buffers of any other module are snapshotted and written back on exit.
    """
    frozen: list[nn.Module] = []
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    batchnorm = nn.modules.batchnorm._BatchNorm
    for m in unique_modules(model):
        if isinstance(m, batchnorm):
            if m.training and m.track_running_stats:
                frozen.append(m)
        elif m._buffers:
            saved += [(b, b.detach().clone()) for b in m._buffers.values() if b is not None]
    # A plain attribute: object.__setattr__ skips nn.Module.__setattr__'s bookkeeping
    # (30x faster, which matters for the hundreds of BatchNorms of a deep ResNet).
    for m in frozen:
        object.__setattr__(m, "track_running_stats", False)
    try:
        yield
    finally:
        for m in frozen:
            object.__setattr__(m, "track_running_stats", True)
        with torch.no_grad():
            for b, v in saved:
                b.copy_(v)


def forward_or_locate(model: nn.Module, x: ModelInput, handles: list[Any]) -> Any:
    """``call_model(model, x)``; if it raises, remove ``handles`` (so they do not see the
    diagnostic re-run) and raise :class:`ForwardError` naming the failing module."""
    try:
        return call_model(model, x)
    except Exception as e:
        for h in handles:
            h.remove()
        handles.clear()
        raise locate_failure(model, x, e) from e


def locate_failure(model: nn.Module, x: ModelInput, error: BaseException) -> ForwardError:
    """Re-run the forward with module hooks to name the innermost module that failed."""
    names = module_names(model)
    stack: list[tuple[str, nn.Module, str]] = []

    def pre(mod: nn.Module, args: Any) -> None:
        if id(mod) in names:
            stack.append((names[id(mod)] or "<model>", mod, describe_input(args)))

    def post(mod: nn.Module, args: Any, out: Any) -> None:
        if stack and stack[-1][1] is mod:
            stack.pop()

    h1 = nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = nn.modules.module.register_module_forward_hook(post)
    try:
        with torch.no_grad(), buffers_restored(model):
            call_model(model, x)
    except Exception:  # noqa: BLE001 -- the failure being diagnosed
        pass
    finally:
        h1.remove()
        h2.remove()
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if stack:
        name, mod, shapes = stack[-1]
        return ForwardError(
            f"forward failed in module '{name}' ({type(mod).__name__}), which received input "
            f"of shape {shapes}: {first_line}"
        )
    return ForwardError(f"forward failed on input of shape {describe_input(x)}: {first_line}")
