"""The module surgery of :func:`~signalprop.convert.to_normfree`, given the model's
structure (:class:`~signalprop.convert._analysis.Analysis`, from a graph or a forward)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from signalprop import theory
from signalprop._forward import ModelInput, buffers_restored, call_model, locate_failure
from signalprop.convert import _ops as O
from signalprop.convert._analysis import Analysis, Feed
from signalprop.convert._gate import GatedBranch
from signalprop.convert._surgery import (
    get_module,
    has_ws_version,
    layer_scales,
    set_module,
    ws_layer,
)
from signalprop.convert.report import ConversionError, ConversionReport


def convert(new: nn.Module, a: Analysis, skipinit_init: float, convert_linear: bool,
            eps: float | None) -> tuple[nn.Module, ConversionReport]:
    """Convert ``new`` (a copy) in place as ``a`` says; returns the root and the report."""
    modules = dict(new.named_modules())
    report = ConversionReport(a.method)
    # 1. weight layers -> Scaled WS with the gamma of the activation that feeds them
    for name, feeds in a.feeds.items():
        m = modules[_plain(name)]
        if not _keeps_weight_layer(name, m, a.head, convert_linear, report):
            new = _to_scaled_ws(new, name, m, feeds, eps, report)
    for name, m in modules.items():
        if name and name not in a.feeds and _is_convertible(m):
            report.refuse(name, f"kept {type(m).__name__}", "it did not run as a module in "
                          f"the forward analysed ({a.method})")
    # 2. BatchNorm -> Identity
    for name, m in modules.items():
        if isinstance(m, O.BATCHNORMS):
            new = set_module(new, name, nn.Identity())
            report.add(name or "<model>", f"removed {type(m).__name__}")
    # 3. residual gains at the end of every branch found
    new = _add_residual_gains(new, a, skipinit_init, report)
    for name, m in modules.items():
        if isinstance(m, O.PER_EXAMPLE_NORMS):
            report.refuse(name, f"kept {type(m).__name__}", "per-example normalization; it "
                          "does not mix examples")
    if not a.residuals:
        report.refuse("<model>", "no residual gain", "no residual addition found")
    if not report.changes:
        report.refuse("<model>", "nothing converted", "no BatchNorm, no weight layer with a "
                      "Scaled WS version and no residual branch found")
    return new, report


def _plain(name: str) -> str:
    return "" if name == "<model>" else name


def _is_convertible(m: nn.Module) -> bool:
    return not isinstance(m, O.WS_LAYERS) and has_ws_version(m)


def _keeps_weight_layer(name: str, m: nn.Module, head: str | None, convert_linear: bool,
                        report: ConversionReport) -> bool:
    """Whether module ``name`` stays as it is (reported, with the reason, when a weight
    layer is kept)."""
    linear = isinstance(m, nn.Linear) or O.is_hf_conv1d(m)
    if isinstance(m, (nn.MultiheadAttention, nn.RNNBase)):
        report.refuse(name, f"kept {type(m).__name__}", "no Scaled WS version of this layer "
                      "(its weights are used inside one fused function)")
        return True
    if isinstance(m, O.WS_LAYERS) or not (linear or isinstance(m, nn.modules.conv._ConvNd)):
        return True
    if name == head:
        report.refuse(name, f"kept {type(m).__name__}", "the classifier (last Linear applied)")
    elif linear and not convert_linear:
        report.refuse(name, f"kept {type(m).__name__}", "convert_linear=False")
    elif not has_ws_version(m):
        report.refuse(name, f"kept {type(m).__name__}", "no Scaled WS version of this layer")
    else:
        return False
    return True


def _to_scaled_ws(new: nn.Module, name: str, m: nn.Module, feeds: list[Feed],
                  eps: float | None, report: ConversionReport) -> nn.Module:
    """Replace weight layer ``name`` by its Scaled WS version, with the gamma of the
    activation feeding its first call; returns the root."""
    act, how = feeds[0]
    distinct = {repr(a) for a, _ in feeds}
    gamma = theory.gamma(act[0], **act[1]) if act is not None else 1.0
    layer = ws_layer(m, gamma, eps)
    new = set_module(new, name, layer)
    feed = f"{act[0]} at {how}" if act is not None else (how or "no activation before it")
    report.add(name, f"{type(m).__name__} -> {type(layer).__name__}",
               f"gamma={gamma:.6g} for {feed}")
    if len(distinct) > 1:
        report.refuse(name, "gamma ambiguous", f"called on inputs from {len(distinct)} "
                      "different activations; the first was used")
    return new


def _add_residual_gains(new: nn.Module, a: Analysis, skipinit_init: float,
                        report: ConversionReport) -> nn.Module:
    """A SkipInit gain at the end of every residual branch found; LayerScale vectors of
    those blocks set to 1. Returns the root."""
    for r in a.residuals:
        if r.end is None:
            report.refuse(r.block, "no residual gain", r.reason)
            continue
        new = set_module(new, r.end, GatedBranch(get_module(new, r.end), skipinit_init))
        shortcut = f", shortcut '{r.skip}'" if r.skip else ""
        report.add(r.end, "SkipInit gain after the branch",
                   f"init {skipinit_init:g}, block '{r.block}'{shortcut}")
        report.residual_blocks.append(r.block)
        for pname, p in layer_scales(new, r.block):
            was = p.detach().abs().max().item()
            with torch.no_grad():
                p.fill_(1.0)
            report.add(pname, "layer scale set to 1", f"was {was:.3g}; the gain at "
                       f"'{r.end}' scales the branch instead (a product of two near-zero "
                       "gains would not train)")
    return new


@torch.no_grad()
def check_forward(new: nn.Module, x: ModelInput, run: Callable[[], None] | None) -> None:
    """``run()`` (default: one eval-mode forward of ``new`` on ``x``, buffers kept); a
    failure raises ConversionError naming the module of the converted model that failed."""
    flags = [(m, m.training) for m in new.modules()]
    try:
        if run is not None:
            run()
        else:
            new.eval()
            with buffers_restored(new):
                call_model(new, x)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 -- reported with the module where it failed
        new.eval()
        err = locate_failure(new, x, e)
        raise ConversionError(f"to_normfree: the converted model's forward on example_input "
                              f"failed ({err})") from e
    finally:
        for m, flag in flags:
            m.training = flag
