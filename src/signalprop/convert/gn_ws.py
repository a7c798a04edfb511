"""``bn_to_gn_ws``: GroupNorm + Weight Standardization in place of BatchNorm.

Richemond et al. (2020) replace every BatchNorm of BYOL's ResNet-50 by GroupNorm and
standardize every convolution's weights, reaching 73.9% ImageNet linear evaluation against
74.3% with BatchNorm, without any batch statistics. GroupNorm normalizes each example over
groups of channels, so the network is batch-independent in train mode as in eval mode.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn as nn

from signalprop import theory
from signalprop.convert import _graph as G
from signalprop.convert.normfree import _WS_FOR, _set, _ws_layer
from signalprop.convert.report import ConversionError, ConversionReport
from signalprop.nn import group_count


def bn_to_gn_ws(model: nn.Module, groups: int = 32) -> tuple[nn.Module, ConversionReport]:
    """A copy of ``model`` with GroupNorm for every BatchNorm and Scaled-WS convolutions.

    * ``nn.BatchNorm1d/2d/3d(C)`` -> ``nn.GroupNorm(g, C)`` with g the largest divisor of C
      that is at most ``groups``; BatchNorm's affine weight and bias are copied, its
      running statistics dropped (GroupNorm has none);
    * every ``nn.Conv1d/2d/3d`` -> Scaled WS (:class:`~signalprop.nn.ScaledStdConv2d`, ...)
      with its weights and bias copied, ``gamma`` set for the activation feeding it when
      torch.fx can trace the model (1 otherwise; a convolution followed by GroupNorm does
      not depend on it).

    Args:
        model: any module with BatchNorm modules.
        groups: the largest group count (32 as in GroupNorm's paper and Richemond et al.).

    Returns:
        ``(new_model, report)``.

    Raises:
        ValueError: ``groups`` < 1.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 3), torch.nn.BatchNorm2d(48))
        >>> new, report = sp.convert.bn_to_gn_ws(net)
        >>> new[1].num_groups, new[1].num_channels
        (24, 48)

    References:
        Richemond et al., "BYOL works even without batch statistics", arXiv 2010.10241;
        Qiao et al., "Micro-batch training with batch-channel normalization and weight
        standardization", arXiv 1903.10520; Wu & He, "Group normalization", ECCV 2018.
    """
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be an integer >= 1, got {groups!r}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model)
    report = ConversionReport("module replacement")
    modules = dict(new.named_modules())
    gammas: dict[str, float] = {}
    try:
        gm = G.trace(new, "bn_to_gn_ws")
    except ConversionError as e:
        report.refuse("<model>", "gamma 1 for every convolution", str(e))
    else:
        functional = G.batchnorm_functions(gm.graph)
        if functional:
            where = ", ".join(sorted({f"'{G.scope(n)}'" for n in functional}))
            raise ConversionError(f"bn_to_gn_ws cannot analyse {type(model).__name__}: "
                                  f"batch_norm is called as a function in {where}")
        for n in gm.graph.nodes:
            if n.op == "call_module" and str(n.target) not in gammas:
                act, _ = G.feeding_activation(n, modules)
                gammas[str(n.target)] = theory.gamma(act[0], **act[1]) if act else 1.0
    for name, m in modules.items():
        if isinstance(m, G.BATCHNORMS):
            c = m.num_features
            g = group_count(c, groups)
            gn = nn.GroupNorm(g, c, eps=m.eps, affine=True, device=_device(m),
                              dtype=_dtype(m))
            if m.affine:
                with torch.no_grad():
                    gn.weight.copy_(m.weight)
                    gn.bias.copy_(m.bias)
            new = _set(new, name, gn)
            report.add(name, f"{type(m).__name__} -> GroupNorm({g}, {c})",
                       "affine copied" if m.affine else "")
            if g != groups:
                report.refuse(name, f"{g} groups instead of {groups}",
                              f"{groups} does not divide {c} channels")
        elif type(m) in _WS_FOR:
            layer = _ws_layer(m, gammas.get(name, 1.0), None)
            new = _set(new, name, layer)
            report.add(name, f"{type(m).__name__} -> {type(layer).__name__}",
                       f"gamma={layer.gamma:.6g}")
        elif isinstance(m, nn.modules.conv._ConvNd) and not isinstance(m, G.WS_LAYERS):
            report.refuse(name, f"kept {type(m).__name__}", "no Scaled WS version of this layer")
    if not report.count(""):
        report.refuse("<model>", "nothing to convert", "no BatchNorm and no convolution found")
    return new, report


def _device(m: nn.Module) -> torch.device | None:
    for t in itertools.chain(m.parameters(), m.buffers()):
        return t.device
    return None


def _dtype(m: nn.Module) -> torch.dtype | None:
    for t in itertools.chain(m.parameters(), m.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None
