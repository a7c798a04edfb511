"""Facts about a model the report needs beside the measurements: its activation, block
sizes, block types, and the theory's numbers for its initialization."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from signalprop import theory

# torch activation modules -> signalprop.theory activation names
_TORCH_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.Tanh: "tanh", nn.GELU: "gelu", nn.SiLU: "silu", nn.ELU: "elu",
    nn.SELU: "selu", nn.Softplus: "softplus", nn.LeakyReLU: "leaky_relu",
    nn.Sigmoid: "sigmoid",
}


def activation_name(model: nn.Module) -> str | None:
    """The activation a model uses, as a ``signalprop.theory`` name, or None.

    signalprop models say so in their config (ResNetV2) or activation modules (``.name``
    of GammaAct); otherwise the first torch activation module found decides.

    Examples:
        >>> activation_name(nn.Sequential(nn.Linear(2, 2), nn.Tanh()))
        'tanh'
    """
    cfg = getattr(model, "cfg", None)
    names = set(theory.activation_names())
    if isinstance(getattr(cfg, "activation", None), str) and cfg.activation in names:
        return cfg.activation
    for m in model.modules():
        name = getattr(m, "name", None)
        if isinstance(name, str) and name in names and hasattr(m, "fn"):
            return name
        for cls, act in _TORCH_ACTIVATIONS.items():
            if type(m) is cls and act in names:
                return act
    return None


def theory_numbers(model: nn.Module, activation: str | None,
                   x: torch.Tensor) -> tuple[float | None, float | None]:
    """(critical sigma_w^2 of ``activation``, mean-field chi_1 of the model's own init).

    chi_1 needs the model's sigma_w^2 (signalprop MLPs record it as ``.sigma_w2``); the
    fixed point is the one reached from q0 = sigma_w^2 E[x^2] + sigma_b^2.
    """
    if activation is None:
        return None, None
    try:
        crit = theory.critical_point(activation).sigma_w2
    except ValueError:
        crit = None
    sw2 = getattr(model, "sigma_w2", None)
    if not isinstance(sw2, float | int) or not sw2 > 0:
        return crit, None
    sb2 = float(getattr(model, "sigma_b2", 0.0) or 0.0)
    q0 = float(sw2) * float(x.double().pow(2).mean()) + sb2
    try:
        chi = theory.mean_field(activation, float(sw2), sb2, q0=q0).chi_1
    except ValueError:
        chi = None
    return crit, chi if chi is None or math.isfinite(chi) else None


def block_types(model: nn.Module, names: Sequence[str]) -> dict[str, int]:
    """Class name -> how many of the measured blocks have it (first calls only)."""
    modules = dict(model.named_modules())
    seen = {n.split("#")[0] for n in names}
    return dict(Counter(type(modules[n]).__name__ for n in sorted(seen) if n in modules))


def block_numel(model: nn.Module, names: Sequence[str], x: Any) -> tuple[list[int] | None, Any]:
    """Elements per example of each block's output, and the model's output, from one
    ``torch.no_grad()`` forward (mode and buffers restored); None where a block's output
    is not a tensor."""
    wanted = {n.split("#")[0] for n in names}
    calls: dict[str, list[int]] = {}
    handles = []

    def hook(name: str) -> Any:
        def fn(_m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.dim() > 0:
                calls.setdefault(name, []).append(out[0].numel())
        return fn

    for name, m in model.named_modules():
        if name in wanted:
            handles.append(m.register_forward_hook(hook(name)))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        model.load_state_dict(state)
    sizes: list[int] = []
    counts: Counter[str] = Counter()
    for n in names:
        base = n.split("#")[0]
        k = counts[base]
        counts[base] += 1
        got = calls.get(base, [])
        if k >= len(got):
            return None, out
        sizes.append(got[k])
    return sizes, out


def has_batchnorm(model: nn.Module) -> bool:
    """True when any module is a BatchNorm."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def module_type(model: nn.Module, name: str | None) -> str | None:
    """The class name of module ``name`` (None when absent)."""
    if not name:
        return None
    m = dict(model.named_modules()).get(name.split("#")[0])
    return None if m is None else type(m).__name__
