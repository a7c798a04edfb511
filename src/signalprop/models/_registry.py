"""Model registry: preset names -> factories with default keyword arguments.

Presets are data, not code paths: ``register_model("resnetv2_50", resnetv2,
depths=(3, 4, 6, 3))`` makes ``create_model("resnetv2_50", norm="nf")`` call
``resnetv2(depths=(3, 4, 6, 3), norm="nf")``.
"""

from __future__ import annotations

import difflib
import importlib
import operator
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, factory: Callable[..., nn.Module], description: str = "", **defaults: Any
) -> None:
    """Register ``factory`` under ``name`` with preset keyword arguments ``defaults``.

    Examples:
        >>> register_model("linear_4_2", nn.Linear, "a 4 -> 2 linear map", in_features=4,
        ...                out_features=2)
        >>> create_model("linear_4_2", bias=False)
        Linear(in_features=4, out_features=2, bias=False)
        >>> del _REGISTRY["linear_4_2"]  # leave the registry as it was
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(name, factory, dict(defaults), description)


def list_models() -> list[str]:
    """Names of every registered model preset.

    Examples:
        >>> [name for name in list_models() if name.startswith("resnetv2_1")]
        ['resnetv2_1000', 'resnetv2_101', 'resnetv2_152']
    """
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names list the valid ones.

    Examples:
        >>> entry = model_entry("resnetv2_50")
        >>> entry.factory.__name__, entry.description
        ('resnetv2', 'pre-activation bottleneck ResNet-V2, blocks (3, 4, 6, 3)')
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"unknown model {name!r}{hint}; valid names: {', '.join(list_models())}"
        )
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the preset ``name``; ``kwargs`` override the preset's defaults.

    Examples:
        >>> from signalprop.models import create_model
        >>> m = create_model("resnetv2_50", norm="nf", num_classes=10, stem="cifar")
        >>> type(m).__name__
        'ResNetV2'
    """
    entry = model_entry(name)
    return entry.factory(**{**entry.defaults, **kwargs})


def load_model(spec: str, **kwargs: Any) -> nn.Module:
    """Build a model from a preset name or a ``package.module:factory`` reference.

    The factory is imported (the current directory is importable, as for ``python -m``)
    and called with ``kwargs``; it must return an ``nn.Module``.

    Raises:
        ValueError: unknown preset, a module that cannot be imported (with the reason),
            a missing attribute, a factory that rejects the arguments or returns no module.

    Examples:
        >>> load_model("torch.nn:Linear", in_features=4, out_features=2)
        Linear(in_features=4, out_features=2, bias=True)
    """
    if ":" not in spec:
        return create_model(spec, **kwargs)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"model reference must look like 'package.module:factory', got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 -- any import failure is reported, with its cause
        raise ValueError(f"cannot import {module_name!r} (from {spec!r}): "
                         f"{type(e).__name__}: {e}") from e
    try:
        factory = operator.attrgetter(attr)(module)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(factory):
        raise ValueError(f"{spec!r} is a {type(factory).__name__}, not a callable factory")
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise ValueError(f"{spec!r} rejected the arguments {kwargs}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ValueError(f"{spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model
