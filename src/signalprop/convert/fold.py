"""``fold_ws``: an inference copy with Weight Standardization baked into plain layers.

Scaled WS recomputes W_hat = gain * gamma * (W - mean W) / (std W * sqrt(N)) from the raw
weights; at inference the weights are fixed, so every Scaled-WS layer becomes the plain
``nn.ConvNd`` / ``nn.Linear`` holding W_hat. Where torch.fx can trace the model, the scalar
multiplications NF networks add around convolutions are folded into the weights too:

* ``conv(x) * c`` (SkipInit gains, ``torch.add(a, conv(x), alpha=c)``): W, b <- c W, c b;
* ``h * c`` read only by convolutions (GammaAct's gamma): W <- c W in each of them;
* ``relu(x * c)`` with c > 0 (NF's 1/beta) = ``relu(x) * c``, and average pooling or a
  reshape of ``x * c`` likewise, then folded as above; identities and (eval-mode)
  dropouts are dropped;

so the folded network runs what a plain-conv network of the same shape runs. Without a
traceable graph (or where a module name holds a character torch.fx cannot write
as code, such as a quote), only the layers are replaced (the result is still exact).
"""

from __future__ import annotations

import copy
import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from signalprop.convert import _graph as G
from signalprop.convert import _ops as O
from signalprop.convert._surgery import set_module
from signalprop.convert.report import ConversionError

_PLAIN = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_MULS = {operator.mul, torch.mul}
_HOMOGENEOUS = {F.relu, torch.relu}  # relu(c x) = c relu(x) for c > 0


def _plain(m: nn.Module) -> nn.Module:
    w = m.standardized_weight().detach()
    has_bias = m.bias is not None
    kw: dict[str, Any] = {"device": w.device, "dtype": w.dtype}
    if isinstance(m, nn.Linear):
        new: nn.Module = nn.Linear(m.in_features, m.out_features, bias=has_bias, **kw)
    else:
        new = _PLAIN[w.dim() - 2](
            m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
            dilation=m.dilation, groups=m.groups, bias=has_bias, padding_mode=m.padding_mode,
            **kw)
    new.weight.copy_(w)
    if has_bias:
        new.bias.copy_(m.bias)
    return new


@torch.no_grad()
def fold_ws(model: nn.Module) -> nn.Module:
    """An eval-mode inference copy of ``model`` with only plain convolutions and linears.

    Every Scaled-WS layer (``ScaledStdConv1d/2d/3d``, ``WSLinear``) becomes the plain layer
    holding its standardized weight; constant scalings next to them are folded in (see the
    module docstring). The copy's parameters do not require gradients; its outputs equal the
    original's in eval mode up to float rounding (~1e-6 relative in float32), and it can be
    exported with ``torch.export``. The original model is untouched.

    Args:
        model: any module (those without Scaled-WS layers are copied unchanged).

    Returns:
        A ``torch.fx.GraphModule`` when the model traces, else the copied module.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = sp.models.resnetv2([1], norm="nf", stem="cifar", width=0.25).eval()
        >>> plain = sp.convert.fold_ws(net)
        >>> x = torch.randn(2, 3, 8, 8)
        >>> torch.allclose(plain(x), net(x), atol=1e-5)
        True
        >>> any(isinstance(m, sp.nn.ScaledStdConv2d) for m in plain.modules())
        False
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model).eval()
    for name, m in list(new.named_modules()):
        if isinstance(m, O.WS_LAYERS):
            new = set_module(new, name, _plain(m))
    new.requires_grad_(False)
    try:
        gm = fx.GraphModule(new, G.trace(new, "fold_ws"))
    except (ConversionError, SyntaxError):
        # untraceable, or a module name torch.fx cannot write as code (a quote in it)
        return new
    _drop_identities(gm)
    _fold_scalars(gm)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm.eval()


# ---- scalar folding on the graph ---------------------------------------------------------
def _const(gm: fx.GraphModule, a: Any) -> float | None:
    """The value of a scalar operand: a Python number or a one-element get_attr tensor."""
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        return float(a)
    if isinstance(a, fx.Node) and a.op == "get_attr":
        t = gm.get_parameter(str(a.target)) if _is_param(gm, a) else _attr(gm, str(a.target))
        if isinstance(t, torch.Tensor) and t.numel() == 1:
            return float(t.detach().item())
    return None


def _is_param(gm: fx.GraphModule, node: fx.Node) -> bool:
    try:
        gm.get_parameter(str(node.target))
    except AttributeError:
        return False
    return True


def _attr(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _scalar_mul(gm: fx.GraphModule, n: fx.Node) -> tuple[fx.Node, float] | None:
    """(x, c) when ``n`` computes x * c or x / c with a constant scalar c."""
    if n.kwargs:
        return None
    is_mul = (n.op == "call_function" and n.target in _MULS) or (
        n.op == "call_method" and n.target == "mul")
    is_div = n.op == "call_function" and n.target is operator.truediv
    if not (is_mul or is_div) or len(n.args) != 2:
        return None
    a, b = n.args
    cb = _const(gm, b)
    if isinstance(a, fx.Node) and cb is not None:
        if is_div:
            return (a, 1.0 / cb) if cb != 0 else None
        return a, cb
    ca = _const(gm, a)
    if is_mul and isinstance(b, fx.Node) and ca is not None:
        return b, ca
    return None


def _weight_layer(gm: fx.GraphModule, n: fx.Node, calls: dict[str, int]) -> nn.Module | None:
    """The conv/linear module ``n`` calls, if that module is called nowhere else."""
    if n.op != "call_module" or calls.get(str(n.target), 0) != 1:
        return None
    m = gm.get_submodule(str(n.target))
    return m if type(m) in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d) else None


def _fold_scalars(gm: fx.GraphModule) -> None:
    # Rewrites add or remove no module calls, so the call counts hold throughout.
    calls: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            calls[str(n.target)] = calls.get(str(n.target), 0) + 1
    changed = True
    while changed:
        changed = False
        for n in list(gm.graph.nodes):
            if getattr(n, "_erased", False):
                continue
            if _fold_alpha(gm, n, calls) or _fold_one(gm, n, calls):
                changed = True


def _fold_alpha(gm: fx.GraphModule, n: fx.Node, calls: dict[str, int]) -> bool:
    """torch.add(a, conv(x), alpha=c) -> a + conv'(x) with conv' = c conv."""
    if not (n.op == "call_function" and n.target is torch.add and set(n.kwargs) == {"alpha"}
            and len(n.args) == 2 and isinstance(n.args[1], fx.Node)):
        return False
    y = n.args[1]
    m = _weight_layer(gm, y, calls)
    if m is None or len(y.users) != 1:
        return False
    _scale(m, float(n.kwargs["alpha"]), bias=True)
    n.kwargs = {}
    return True


def _fold_one(gm: fx.GraphModule, n: fx.Node, calls: dict[str, int]) -> bool:
    found = _scalar_mul(gm, n)
    if found is None:
        return False
    x, c = found
    if c == 1.0:  # x * 1
        n.replace_all_uses_with(x)
        gm.graph.erase_node(n)
        return True
    inner = _scalar_mul(gm, x)
    if inner is not None and len(x.users) == 1:  # (z * a) * c -> z * (a c)
        n.args = (inner[0], inner[1] * c)
        gm.graph.erase_node(x)
        return True
    m = _weight_layer(gm, x, calls)
    if m is not None and len(x.users) == 1:  # conv(x) * c -> conv'(x)
        _scale(m, c, bias=True)
        n.replace_all_uses_with(x)
        gm.graph.erase_node(n)
        return True
    users = list(n.users)
    layers = [_weight_layer(gm, u, calls) for u in users]
    if users and all(m is not None and u.args[0] is n and len(u.args) == 1 and not u.kwargs
                     for m, u in zip(layers, users)):  # conv(h * c) -> conv'(h)
        for m in layers:
            _scale(m, c, bias=False)  # type: ignore[arg-type]
        n.replace_all_uses_with(x)
        gm.graph.erase_node(n)
        return True
    if len(users) == 1 and _commutes(gm, users[0], c):  # relu(x c) -> relu(x) c, pool alike
        act = users[0]
        act.args = (x, *act.args[1:])
        with gm.graph.inserting_after(act):
            scaled = gm.graph.call_function(operator.mul, (act, c))
        act.replace_all_uses_with(scaled, delete_user_cb=lambda u: u is not scaled)
        gm.graph.erase_node(n)
        return True
    return False


_LINEAR_MODULES = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
                   nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.Flatten)


def _commutes(gm: fx.GraphModule, n: fx.Node, c: float) -> bool:
    """Whether op(x * c) == op(x) * c: linear pooling and reshapes, relu for c > 0."""
    if n.op == "call_function" and n.target in _HOMOGENEOUS:
        return c > 0 and len(n.args) == 1 and not n.kwargs.get("inplace", False)
    if n.op == "call_method" and n.target == "relu":
        return c > 0 and len(n.args) == 1
    if n.op == "call_function" and n.target is torch.flatten:
        return True
    if n.op == "call_method" and n.target in ("view", "reshape", "flatten"):
        return True
    return n.op == "call_module" and isinstance(gm.get_submodule(str(n.target)), _LINEAR_MODULES)


# Identities, and dropouts, which are identities in an eval-mode inference copy.
_NO_OPS = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def _drop_identities(gm: fx.GraphModule) -> None:
    for n in list(gm.graph.nodes):
        if n.op == "call_module" and type(gm.get_submodule(str(n.target))) in _NO_OPS:
            n.replace_all_uses_with(n.args[0])
            gm.graph.erase_node(n)


def _scale(m: nn.Module, c: float, bias: bool) -> None:
    m.weight.mul_(c)
    if bias and m.bias is not None:
        m.bias.mul_(c)
