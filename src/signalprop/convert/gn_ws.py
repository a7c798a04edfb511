"""``bn_to_gn_ws``: GroupNorm + Weight Standardization in place of BatchNorm.

Richemond et al. (2020) replace every BatchNorm of BYOL's ResNet-50 by GroupNorm and
standardize every convolution's weights, reaching 73.9% ImageNet linear evaluation against
74.3% with BatchNorm, without any batch statistics. GroupNorm normalizes each example over
groups of channels, so the network is batch-independent in train mode as in eval mode.

GroupNorm normalizes a group over its channels *and positions*. A BatchNorm that sees one
value per channel -- ``BatchNorm1d`` on (N, C) features after a Linear, or a BatchNorm on a
1x1 map -- would get groups of C/g values, and with g = C every output would be the
constant bias. There the converter uses one group, GroupNorm(1, C): LayerNorm over the C
features (what transformers and MLP-Mixers normalize with), with BatchNorm's per-feature
affine copied.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
import torch.nn as nn

from signalprop import theory
from signalprop._forward import ModelInput
from signalprop.convert import _ops as O
from signalprop.convert._analysis import Analysis
from signalprop.convert._surgery import WS_FOR, analyse, set_module, ws_layer
from signalprop.convert.report import ConversionError, ConversionReport
from signalprop.nn import group_count


def bn_to_gn_ws(model: nn.Module, groups: int = 32, *, example_input: ModelInput | None = None,
                ws: bool | None = None) -> tuple[nn.Module, ConversionReport]:
    """A copy of ``model`` with GroupNorm for every BatchNorm and Scaled-WS convolutions.

    * ``nn.BatchNorm2d/3d(C)`` -> ``nn.GroupNorm(g, C)`` with g the largest divisor of C
      that is at most ``groups``; ``nn.BatchNorm1d(C)`` likewise where its input is
      (N, C, L) with L > 1, and ``nn.GroupNorm(1, C)`` (LayerNorm over the features) where
      its input is (N, C) or of unknown shape (no ``example_input``): see the module
      docstring. BatchNorm's affine weight and bias are copied, its running statistics
      dropped (GroupNorm has none);
    * every ``nn.Conv1d/2d/3d`` -> Scaled WS (:class:`~signalprop.nn.ScaledStdConv2d`, ...)
      with its weights and bias copied, ``gamma`` set for the activation feeding it where
      the structure is known (1 otherwise; a convolution followed by GroupNorm does not
      depend on it) -- only in models that have a BatchNorm, unless ``ws=True``.

    A model without BatchNorm is returned unchanged (a copy), the report saying so.

    Args:
        model: any module.
        groups: the largest group count (32 as in GroupNorm's paper and Richemond et al.).
        example_input: a batch the model accepts; one eval-mode forward on it gives each
            BatchNorm's input shape and each convolution's feeding activation (needed for
            models torch.fx cannot trace, such as HuggingFace ones).
        ws: standardize the convolutions: None (default) where a BatchNorm is replaced,
            True always (also in a model without BatchNorm), False never.

    Returns:
        ``(new_model, report)``.

    Raises:
        ValueError: ``groups`` < 1 or ``ws`` not None/True/False.
        ConversionError: batch_norm called as a function, or the forward on
            ``example_input`` failed (the module is named).

    Examples:
        >>> import torch, signalprop as sp
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 3), torch.nn.BatchNorm2d(48))
        >>> new, report = sp.convert.bn_to_gn_ws(net)
        >>> new[1].num_groups, new[1].num_channels
        (24, 48)
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.BatchNorm1d(32))
        >>> sp.convert.bn_to_gn_ws(mlp, example_input=torch.randn(4, 8))[0][1]
        GroupNorm(1, 32, eps=1e-05, affine=True, bias=True)

    References:
        Richemond et al., "BYOL works even without batch statistics", arXiv 2010.10241;
        Qiao et al., "Micro-batch training with batch-channel normalization and weight
        standardization", arXiv 1903.10520; Wu & He, "Group normalization", ECCV 2018.
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be an integer >= 1, got {groups!r}")
    if ws not in (None, True, False):
        raise ValueError(f"ws must be None, True or False, got {ws!r}")
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model)
    modules = dict(new.named_modules())
    has_bn = any(isinstance(m, O.BATCHNORMS) for m in modules.values())
    if not has_bn and not ws:
        report = ConversionReport("none (no BatchNorm)")
        report.refuse("<model>", "nothing converted", "no BatchNorm module; convolutions are "
                      "left as they are (ws=True standardizes them anyway)")
        return new, report
    a, report = _analysis(new, example_input)
    for name, m in modules.items():
        if isinstance(m, O.BATCHNORMS):
            new = set_module(new, name, _group_norm(name, m, groups, a, report))
    if ws is False:
        report.refuse("<model>", "convolutions kept", "ws=False")
        return new, report
    for name, m in modules.items():
        if type(m) in WS_FOR:
            feeds = a.feeds.get(name) if a is not None else None
            act = feeds[0][0] if feeds else None
            layer = ws_layer(m, theory.gamma(act[0], **act[1]) if act else 1.0, None)
            new = set_module(new, name, layer)
            report.add(name, f"{type(m).__name__} -> {type(layer).__name__}",
                       f"gamma={layer.gamma:.6g}" + (f" for {act[0]} at {feeds[0][1]}"
                                                     if act else ""))
        elif isinstance(m, nn.modules.conv._ConvNd) and not isinstance(m, O.WS_LAYERS):
            report.refuse(name, f"kept {type(m).__name__}", "no Scaled WS version of this layer")
    return new, report


def _analysis(new: nn.Module, x: ModelInput | None) -> tuple[Analysis | None, ConversionReport]:
    """The structure (None where torch.fx cannot trace and no input was given) and the
    report to fill."""
    try:
        a = analyse(new, x, "bn_to_gn_ws")
    except ConversionError as e:
        if x is not None:
            raise
        report = ConversionReport("module replacement")
        report.refuse("<model>", "gamma 1 for every convolution", str(e))
        return None, report
    if a.functional_bn:
        where = ", ".join(f"'{n}'" for n in a.functional_bn)
        raise ConversionError(f"bn_to_gn_ws cannot analyse {type(new).__name__}: "
                              f"batch_norm is called as a function in {where}")
    return a, ConversionReport(a.method)


def _group_norm(name: str, m: nn.Module, groups: int, a: Analysis | None,
                report: ConversionReport) -> nn.GroupNorm:
    """The GroupNorm replacing BatchNorm ``m`` (its affine copied), reported."""
    c = m.num_features
    shapes = a.shapes.get(name) if a is not None else None
    positions = min((math.prod(s[2:]) for s in shapes), default=1) if shapes else None
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)) and positions is None:
        positions = 2  # an image or volume: several positions per channel
    g = group_count(c, groups) if positions is not None and positions > 1 else 1
    gn = nn.GroupNorm(g, c, eps=m.eps, affine=True, device=_device(m), dtype=_dtype(m))
    if m.affine:
        with torch.no_grad():
            gn.weight.copy_(m.weight)
            gn.bias.copy_(m.bias)
    affine = "affine copied" if m.affine else "no affine to copy"
    report.add(name, f"{type(m).__name__} -> GroupNorm({g}, {c})", affine)
    if g == 1 and c > 1:
        why = ("its input has one value per channel" if positions is not None else
               "its input shape is unknown (give example_input to use groups on (N, C, L))")
        report.refuse(name, f"1 group instead of {group_count(c, groups)}",
                      f"{why}: GroupNorm(1, {c}) is LayerNorm over the {c} features (groups "
                      "of one value each would make every output the constant bias)")
    elif g != groups:
        report.refuse(name, f"{g} groups instead of {groups}",
                      f"{groups} does not divide {c} channels")
    return gn


def _device(m: nn.Module) -> torch.device | None:
    for t in itertools.chain(m.parameters(), m.buffers()):
        return t.device
    return None


def _dtype(m: nn.Module) -> torch.dtype | None:
    for t in itertools.chain(m.parameters(), m.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None
