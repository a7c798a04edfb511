"""Model registry: preset names -> factories with default keyword arguments.

Presets are data, not code paths: ``register_model("resnetv2_50", resnetv2,
depths=(3, 4, 6, 3))`` makes ``create_model("resnetv2_50", norm="nf")`` call
``resnetv2(depths=(3, 4, 6, 3), norm="nf")``.
"""

from __future__ import annotations

import difflib
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
    """Register ``factory`` under ``name`` with preset keyword arguments ``defaults``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(name, factory, dict(defaults), description)


def list_models() -> list[str]:
    """Names of every registered model preset."""
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; unknown names list the valid ones."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"unknown model {name!r}{hint}; valid names: {', '.join(list_models())}"
        )
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the preset ``name``; ``kwargs`` override the preset's defaults.

    Example:
        >>> from signalprop.models import create_model
        >>> m = create_model("resnetv2_50", norm="nf", num_classes=10, stem="cifar")
        >>> type(m).__name__
        'ResNetV2'
    """
    entry = model_entry(name)
    return entry.factory(**{**entry.defaults, **kwargs})
