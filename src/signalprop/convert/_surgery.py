"""Module surgery shared by the converters: finding the structure, putting a module in
place, Scaled-WS versions of weight layers, LayerScale parameters of a block."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from signalprop._forward import ModelInput
from signalprop.convert import _ops as O
from signalprop.convert._analysis import Analysis
from signalprop.convert._gate import GatedBranch
from signalprop.convert._graph import graph_analysis
from signalprop.convert._runtime import runtime_analysis
from signalprop.nn import ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, WSLinear

WS_FOR = {nn.Conv1d: ScaledStdConv1d, nn.Conv2d: ScaledStdConv2d, nn.Conv3d: ScaledStdConv3d}


def analyse(model: nn.Module, example_input: ModelInput | None, what: str) -> Analysis:
    """The structure of ``model``: from one forward on ``example_input`` when given, else
    from its torch.fx graph (a tracing failure raises ConversionError naming the module)."""
    if example_input is not None:
        return runtime_analysis(model, example_input, what)
    return graph_analysis(model, what)


def get_module(root: nn.Module, name: str) -> nn.Module:
    """The module at ``name`` in ``root``, looking through converters' wrappers (a
    :class:`GatedBranch` put around a module keeps the module's children reachable under
    their old names)."""
    m = root
    for part in name.split(".") if name and name != "<model>" else []:
        if part not in m._modules and isinstance(m, GatedBranch):
            m = m.inner
        m = m._modules[part]  # type: ignore[assignment]
    return m


def set_module(root: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """Put ``module`` at ``name`` in ``root``; returns the root (``module`` itself for "")."""
    if not name or name == "<model>":
        return module
    parent, _, child = name.rpartition(".")
    holder = get_module(root, parent)
    if child not in holder._modules and isinstance(holder, GatedBranch):
        holder = holder.inner
    setattr(holder, child, module)
    return root


def has_ws_version(m: nn.Module) -> bool:
    return type(m) in WS_FOR or type(m) is nn.Linear or O.is_hf_conv1d(m)


def ws_layer(m: nn.Module, gamma: float, eps: float | None) -> nn.Module:
    """The Scaled-WS version of ``m`` (``nn.ConvNd``, ``nn.Linear`` or HuggingFace's
    ``Conv1D``, whose (in, out) weight is transposed into a :class:`WSLinear`), with its
    weights and bias copied (a zero bias where it had none)."""
    w = m.weight
    kw: dict[str, Any] = {"gamma": gamma, "device": w.device, "dtype": w.dtype}
    if eps is not None:
        kw["eps"] = eps
    if O.is_hf_conv1d(m):
        new: nn.Module = WSLinear(w.shape[0], w.shape[1], bias=True, **kw)
        w = w.t()
    elif isinstance(m, nn.Linear):
        new = WSLinear(m.in_features, m.out_features, bias=True, **kw)
    else:
        new = WS_FOR[type(m)](
            m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
            dilation=m.dilation, groups=m.groups, bias=True, padding_mode=m.padding_mode, **kw)
    with torch.no_grad():
        new.weight.copy_(w)
        if m.bias is not None:
            new.bias.copy_(m.bias)
    return new


def layer_scales(model: nn.Module, block: str) -> list[tuple[str, nn.Parameter]]:
    """LayerScale parameters of residual block ``block``: vectors named like
    :data:`~signalprop.convert._ops.LAYER_SCALE_NAMES` held by the block itself or by a
    ``*LayerScale*`` submodule of it."""
    root = get_module(model, block)
    prefix = "" if block == "<model>" else block + "."
    found = []
    for mname, m in root.named_modules():
        if mname and "layerscale" not in type(m).__name__.lower():
            continue
        for pname, p in m.named_parameters(recurse=False):
            vector = p.dim() >= 1 and p.numel() == max(p.shape)
            if vector and pname.lower().startswith(O.LAYER_SCALE_NAMES):
                found.append((prefix + (f"{mname}." if mname else "") + pname, p))
    return found
