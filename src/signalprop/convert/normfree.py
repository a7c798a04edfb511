"""``to_normfree``: turn a BatchNorm residual network into a normalizer-free one.

What it does to a copy of the model (the original is untouched):

1. every BatchNorm module becomes ``nn.Identity`` (the network no longer mixes examples);
2. every convolution becomes a :class:`~signalprop.nn.ScaledStdConv2d` (1d/3d alike) and
   every linear layer but the classifier a :class:`~signalprop.nn.WSLinear`, weights
   and biases copied, a zero bias added where the BatchNorm provided the shift. Each gets
   ``gamma = signalprop.theory.gamma(act)`` for the activation that feeds it (found in the
   graph through pooling, dropout and reshapes), so a unit-variance pre-activation gives a
   unit-variance, zero-mean output: Scaled WS removes the mean shift that makes
   unnormalized ReLU networks' squared channel means grow with depth;
3. every residual addition found in the graph gets a :class:`~signalprop.nn.SkipInit` gain
   (and a :class:`~signalprop.nn.BranchTap`) at the end of its branch, so
   x_{l+1} = x_l + a_l f_l(x_l) with a_l = ``skipinit_init`` (0: every block starts as its
   shortcut, De & Smith 2020).

signalprop's own ResNetV2 is rebuilt as ``norm="nf"`` (Brock et al.'s NF-ResNet with its
beta/alpha scaling) with every weight whose shape matches copied.

Anything the converter cannot analyse raises :class:`ConversionError` naming the modules;
anything it leaves as it was is listed in ``report.not_converted`` with the reason.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from signalprop import theory
from signalprop._forward import ModelInput
from signalprop.convert import _graph as G
from signalprop.convert._gate import GatedBranch, calibrate_gates
from signalprop.convert.report import ConversionError, ConversionReport
from signalprop.models import ResNetV2, resnetv2
from signalprop.nn import ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, SkipInit, WSLinear

_WS_FOR = {nn.Conv1d: ScaledStdConv1d, nn.Conv2d: ScaledStdConv2d, nn.Conv3d: ScaledStdConv3d}


def to_normfree(
    model: nn.Module, *, skipinit_init: float = 0.0, example_input: ModelInput | None = None,
    convert_linear: bool = True, eps: float | None = None,
) -> tuple[nn.Module, ConversionReport]:
    """A normalizer-free copy of a BatchNorm residual network, and a report of the changes.

    Args:
        model: signalprop's ResNetV2, or any module torch.fx can trace whose BatchNorms are
            modules (``nn.BatchNorm1d/2d/3d``) and whose residual additions appear in the
            graph (``a + b``, ``torch.add``, ``+=``).
        skipinit_init: initial value of every residual gain (0 in De & Smith's reference;
            1 reproduces Brock et al.'s NF signal propagation for ResNetV2).
        example_input: a batch to calibrate each converted branch on (graph path only):
            the branch output is divided by its root-mean-square there, so with gain a the
            stream's second moment grows by about a^2 per block (as in NF-ResNets) instead
            of by a factor (1 + a^2 Var(f)/Var(x)) per block. Without it the gains should
            start small (the default 0 makes every block its shortcut).
        convert_linear: replace linear layers other than the classifier by WSLinear.
        eps: Scaled WS eps (default: the layer's default, 1e-4 clamped).

    Returns:
        ``(new_model, report)``; ``report.not_converted`` lists what was left, with reasons.

    Raises:
        ConversionError: the model cannot be traced (the failing module is named), or it
            calls batch_norm functionally (those modules are named).

    Examples:
        >>> import torch, signalprop as sp
        >>> net = sp.models.resnetv2([1, 1], norm="bn", stem="cifar", width=0.25)
        >>> nf, report = sp.convert.to_normfree(net)
        >>> report.method, any(isinstance(m, torch.nn.BatchNorm2d) for m in nf.modules())
        ('ResNetV2 rebuild', False)
        >>> sp.batch_independence(nf, torch.randn(4, 3, 16, 16)).independent
        True

    References:
        Brock, De & Smith, ICLR 2021 (arXiv 2101.08692); De & Smith, NeurIPS 2020
        (arXiv 2002.10444).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if not math.isfinite(skipinit_init):
        raise ValueError(f"skipinit_init must be finite, got {skipinit_init}")
    if isinstance(model, ResNetV2):
        new, report = _resnetv2(model, skipinit_init)
        if example_input is not None:
            report.refuse("<model>", "example_input not used", "NF-ResNetV2 scales its "
                          "branches by its predicted variances (beta) already")
        return new, report
    new, report = _graph_convert(model, skipinit_init, convert_linear, eps)
    if example_input is not None:
        gates = {n: m for n, m in new.named_modules() if isinstance(m, GatedBranch)}
        calibrate_gates(new, gates, example_input, report)
    return new, report


def _resnetv2(model: ResNetV2, skipinit_init: float) -> tuple[nn.Module, ConversionReport]:
    cfg = model.cfg
    report = ConversionReport("ResNetV2 rebuild")
    if cfg.norm == "nf":
        report.refuse("<model>", "nothing to convert", "already normalizer-free (norm='nf')")
        return copy.deepcopy(model), report
    device = next(model.parameters()).device
    new = resnetv2(cfg.depths, norm="nf", activation=cfg.activation, width=cfg.width,
                   stem=cfg.stem, alpha=cfg.alpha, skipinit=True, skipinit_init=skipinit_init,
                   num_classes=cfg.num_classes, in_chans=cfg.in_chans, device=device)
    report.add("<model>", f"ResNetV2 norm={cfg.norm!r} -> 'nf'",
               f"NF-ResNet blocks with alpha={cfg.alpha:g} and beta from the expected variance")
    old_modules = dict(model.named_modules())
    new_modules = dict(new.named_modules())
    old, new_state = model.state_dict(), new.state_dict()
    with torch.no_grad():
        for name, t in new_state.items():
            # residual gains start at skipinit_init, whatever the old network held
            if name in old and old[name].shape == t.shape and not name.endswith("skip_gain.gain"):
                t.copy_(old[name])
    for name, m in old_modules.items():
        if isinstance(m, G.BATCHNORMS):
            report.add(name, f"removed {type(m).__name__}")
        elif isinstance(m, nn.Conv2d) and isinstance(new_modules.get(name), ScaledStdConv2d):
            copied = [k for k, _ in m.named_parameters()
                      if f"{name}.{k}" in new_state
                      and new_state[f"{name}.{k}"].shape == old[f"{name}.{k}"].shape]
            report.add(name, f"{type(m).__name__} -> ScaledStdConv2d",
                       f"{', '.join(copied) or 'nothing'} copied")
    for name, m in new_modules.items():
        if isinstance(m, SkipInit):
            report.add(name, "SkipInit gain after the branch", f"init {skipinit_init:g}")
    bn_tensors = {f"{n}.{k}" for n, m in old_modules.items() if isinstance(m, G.BATCHNORMS)
                  for k, _ in m.state_dict().items()}
    for name in sorted(set(old) - set(new_state) - bn_tensors):
        report.refuse(name, "not copied", "the NF network has no such tensor")
    for name in sorted(n for n, t in new_state.items() if n in old and old[n].shape != t.shape):
        report.refuse(name, "not copied", f"shape {tuple(old[name].shape)} differs")
    report.residual_blocks = [n for n, _ in new.signal_blocks()[1:]]
    new.train(model.training)
    return new, report


def _set(root: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """Put ``module`` at ``name`` in ``root``; returns the root (``module`` itself for "")."""
    if not name:
        return module
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)
    return root


def _ws_layer(m: nn.Module, gamma: float, eps: float | None) -> nn.Module:
    kw: dict[str, Any] = {"gamma": gamma, "device": m.weight.device, "dtype": m.weight.dtype}
    if eps is not None:
        kw["eps"] = eps
    if isinstance(m, nn.Linear):
        new: nn.Module = WSLinear(m.in_features, m.out_features, bias=True, **kw)
    else:
        new = _WS_FOR[type(m)](
            m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
            dilation=m.dilation, groups=m.groups, bias=True, padding_mode=m.padding_mode, **kw)
    with torch.no_grad():
        new.weight.copy_(m.weight)
        if m.bias is not None:
            new.bias.copy_(m.bias)
    return new


def _graph_convert(model: nn.Module, skipinit_init: float, convert_linear: bool,
                   eps: float | None) -> tuple[nn.Module, ConversionReport]:
    new = copy.deepcopy(model)
    gm = G.trace(new, "to_normfree")
    modules = dict(new.named_modules())
    graph = gm.graph
    functional = G.batchnorm_functions(graph)
    if functional:
        where = ", ".join(sorted({f"'{G.scope(n)}'" for n in functional}))
        raise ConversionError(
            f"to_normfree cannot analyse {type(model).__name__}: batch_norm is called as a "
            f"function in {where}; only BatchNorm modules can be removed. Use nn.BatchNorm "
            "modules there")
    report = ConversionReport("torch.fx graph")
    calls: dict[str, list[fx.Node]] = {}
    for n in graph.nodes:
        if n.op == "call_module":
            calls.setdefault(str(n.target), []).append(n)
    head = G.classifier_node(graph, modules)
    # 1. weight layers -> Scaled WS with the gamma of the activation that feeds them
    for name, nodes in calls.items():
        if _keeps_weight_layer(name, modules[name], head, convert_linear, report):
            continue
        new = _to_scaled_ws(new, name, modules[name], nodes, modules, eps, report)
    # 2. BatchNorm -> Identity
    for name, m in modules.items():
        if isinstance(m, G.BATCHNORMS):
            new = _set(new, name, nn.Identity())
            report.add(name, f"removed {type(m).__name__}")
    # 3. residual gains at the end of every branch found in the graph
    new = _add_residual_gains(new, graph, modules, calls, skipinit_init, report)
    for name, m in modules.items():
        if isinstance(m, (nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)):
            report.refuse(name, f"kept {type(m).__name__}", "per-example normalization; it "
                          "does not mix examples")
    if not report.residual_blocks:
        report.refuse("<model>", "no residual gain", "no residual addition found in the graph")
    return new, report


def _keeps_weight_layer(name: str, m: nn.Module, head: fx.Node | None, convert_linear: bool,
                        report: ConversionReport) -> bool:
    """Whether module ``name`` stays as it is (reported, with the reason, when a weight
    layer is kept)."""
    if isinstance(m, G.WS_LAYERS) or not isinstance(m, G.WEIGHT_LAYERS):
        return True
    if head is not None and name == str(head.target):
        report.refuse(name, f"kept {type(m).__name__}", "the classifier (last Linear applied)")
    elif isinstance(m, nn.Linear) and not convert_linear:
        report.refuse(name, "kept Linear", "convert_linear=False")
    elif not isinstance(m, nn.Linear) and type(m) not in _WS_FOR:
        report.refuse(name, f"kept {type(m).__name__}", "no Scaled WS version of this layer")
    else:
        return False
    return True


def _to_scaled_ws(new: nn.Module, name: str, m: nn.Module, nodes: list[fx.Node],
                  modules: dict[str, nn.Module], eps: float | None,
                  report: ConversionReport) -> nn.Module:
    """Replace weight layer ``name`` (called at ``nodes``) by its Scaled WS version, with
    the gamma of the activation feeding its first call; returns the root."""
    feeds = [G.feeding_activation(n, modules) for n in nodes]
    act, how = feeds[0]
    distinct = {repr(a) for a, _ in feeds}
    gamma = theory.gamma(act[0], **act[1]) if act is not None else 1.0
    layer = _ws_layer(m, gamma, eps)
    new = _set(new, name, layer)
    feed = f"{act[0]} at {how}" if act is not None else (how or "no activation before it")
    report.add(name, f"{type(m).__name__} -> {type(layer).__name__}",
               f"gamma={gamma:.6g} for {feed}")
    if len(distinct) > 1:
        report.refuse(name, "gamma ambiguous", f"called on inputs from {len(distinct)} "
                      "different activations; the first was used")
    return new


def _add_residual_gains(new: nn.Module, graph: fx.Graph, modules: dict[str, nn.Module],
                        calls: dict[str, list[fx.Node]], skipinit_init: float,
                        report: ConversionReport) -> nn.Module:
    """A SkipInit gain at the end of the branch of every residual addition in ``graph``;
    returns the root."""
    for add in G.residual_adds(graph, modules):
        block = G.scope(add.node)
        if add.branch is None:
            report.refuse(block, "no residual gain", add.reason)
            continue
        end, why = _branch_end(add.branch, modules, calls)
        if end is None:
            report.refuse(block, "no residual gain", why)
            continue
        new = _set(new, end, GatedBranch(new.get_submodule(end), skipinit_init))
        report.add(end, "SkipInit gain after the branch", f"init {skipinit_init:g}, block "
                   f"'{block}'")
        report.residual_blocks.append(block)
    return new


# Linear ops a scalar gain of either sign commutes with (max-pooling does not, for a < 0).
_COMMUTING_FUNCTIONS = {torch.nn.functional.dropout, torch.flatten, torch.reshape,
                        torch.transpose, torch.permute, torch.nn.functional.avg_pool2d,
                        torch.nn.functional.adaptive_avg_pool2d}
_COMMUTING_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous"}


def _branch_end(node: fx.Node, modules: dict[str, nn.Module],
                calls: dict[str, list[fx.Node]]) -> tuple[str | None, str]:
    """The module whose output ends the branch (a scalar gain commutes with the linear
    reshapes and dropouts walked through), or None and the reason."""
    cur = node
    while True:
        if len(cur.users) != 1:
            return None, f"the branch output '{cur.name}' is also used elsewhere"
        if cur.op == "call_module":
            name = str(cur.target)
            if len(calls[name]) != 1:
                return None, f"module '{name}' ending the branch is called {len(calls[name])} times"
            return name, ""
        commuting = (cur.op == "call_function" and cur.target in _COMMUTING_FUNCTIONS) or (
            cur.op == "call_method" and cur.target in _COMMUTING_METHODS)
        if not commuting or not cur.args or not isinstance(cur.args[0], fx.Node):
            what = getattr(cur.target, "__name__", str(cur.target))
            return None, f"the branch ends in {cur.op} '{what}', not in a module"
        cur = cur.args[0]
