"""torch.fx analysis shared by the converters: tracing with a named failure, activations that
feed a layer, residual additions and which operand is the branch."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from signalprop.convert.report import ConversionError
from signalprop.nn import GammaAct, ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, WSLinear

WS_LAYERS = (ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d, WSLinear)
WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
BATCHNORMS = (nn.modules.batchnorm._BatchNorm,)


class _Tracer(fx.Tracer):
    """Standard leaves, plus signalprop's Scaled-WS layers (one node per layer call)."""

    def __init__(self, extra_leaves: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.extra_leaves = WS_LAYERS + extra_leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.extra_leaves) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module, what: str, extra_leaves: tuple[type, ...] = ()) -> fx.GraphModule:
    """Symbolically trace ``model``; a failure names the innermost module being traced."""
    tracer = _Tracer(extra_leaves)
    try:
        graph = tracer.trace(model)
    except Exception as e:  # noqa: BLE001 -- any tracing failure is reported with its module
        where = [name for name, _ in tracer.module_stack.values() if name]
        mod = where[-1] if where else "<model>"
        kind = type(model.get_submodule(where[-1])).__name__ if where else type(model).__name__
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(
            f"{what} cannot analyse {type(model).__name__}: torch.fx tracing failed in module "
            f"'{mod}' ({kind}): {first}. The converter needs a forward torch.fx can trace "
            "(no Python control flow on tensor values); make that module a leaf or simplify it"
        ) from e
    return fx.GraphModule(tracer.root, graph)


def scope(node: fx.Node) -> str:
    """Qualified name of the innermost module whose forward produced ``node``."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    names = [v[0] for v in stack.values() if v[0]]
    return names[-1] if names else "<model>"


# ---- activations: name and parameters in signalprop.theory's registry ------------------
def _module_activation(m: nn.Module) -> tuple[str, dict[str, float]] | None:
    table: list[tuple[type, Callable[[Any], tuple[str, dict[str, float]] | None]]] = [
        (nn.ReLU, lambda m: ("relu", {})),
        (nn.ReLU6, lambda m: ("relu6", {})),
        (nn.LeakyReLU, lambda m: ("leaky_relu", {"negative_slope": m.negative_slope})),
        (nn.GELU, lambda m: ("gelu", {}) if m.approximate == "none" else None),
        (nn.SiLU, lambda m: ("silu", {})),
        (nn.Tanh, lambda m: ("tanh", {})),
        (nn.Sigmoid, lambda m: ("sigmoid", {})),
        (nn.ELU, lambda m: ("elu", {"alpha": m.alpha})),
        (nn.CELU, lambda m: ("celu", {"alpha": m.alpha})),
        (nn.SELU, lambda m: ("selu", {})),
        (nn.Softplus, lambda m: ("softplus", {"beta": m.beta})),
        (nn.Mish, lambda m: ("mish", {})),
    ]
    for cls, fn in table:
        if type(m) is cls:
            return fn(m)
    return None


_FUNCTION_ACTS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.gelu: "gelu", F.silu: "silu",
    torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    F.elu: "elu", F.selu: "selu", torch.selu: "selu", F.celu: "celu", F.softplus: "softplus",
    F.mish: "mish", F.leaky_relu: "leaky_relu",
}
_METHOD_ACTS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}
# Ops that neither change which activation a value came from nor mix examples' units.
_TRANSPARENT_MODULES = (
    nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Flatten, nn.Unflatten,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d,
    nn.ZeroPad2d, nn.ConstantPad2d, *BATCHNORMS,
)
_TRANSPARENT_FUNCTIONS = {F.dropout, torch.flatten, torch.reshape, torch.transpose,
                          torch.permute, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}
_TRANSPARENT_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous"}


def node_activation(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[str, dict] | None:
    """The registered activation computed by ``node``, if it is one."""
    if node.op == "call_module":
        m = modules[str(node.target)]
        return _module_activation(m)
    if node.op == "call_function" and node.target in _FUNCTION_ACTS:
        name = _FUNCTION_ACTS[node.target]
        params: dict[str, float] = {}
        if name == "leaky_relu":
            params["negative_slope"] = float(_arg(node, 1, "negative_slope", 0.01))
        elif name in ("elu", "celu"):
            params["alpha"] = float(_arg(node, 1, "alpha", 1.0))
        elif name == "softplus":
            params["beta"] = float(_arg(node, 1, "beta", 1.0))
        elif name == "gelu" and _arg(node, 1, "approximate", "none") != "none":
            return None
        return name, params
    if node.op == "call_method" and node.target in _METHOD_ACTS:
        return _METHOD_ACTS[str(node.target)], {}
    return None


def _arg(node: fx.Node, pos: int, key: str, default: Any) -> Any:
    if key in node.kwargs:
        return node.kwargs[key]
    return node.args[pos] if len(node.args) > pos else default


def is_transparent(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], _TRANSPARENT_MODULES)
    if node.op == "call_function":
        return node.target in _TRANSPARENT_FUNCTIONS
    return node.op == "call_method" and node.target in _TRANSPARENT_METHODS


def feeding_activation(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[Any, str]:
    """The activation that produced ``node``'s first input, walking back through
    transparent ops: ((name, params) or None, how it was found)."""
    cur = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    while cur is not None:
        if cur.op == "call_module" and isinstance(modules[str(cur.target)], GammaAct):
            return None, f"'{cur.target}' (GammaAct, gain applied already)"
        act = node_activation(cur, modules)
        if act is not None:
            return act, f"'{cur.name}'"
        if not is_transparent(cur, modules):
            return None, ""
        cur = cur.args[0] if cur.args and isinstance(cur.args[0], fx.Node) else None
    return None, ""


# ---- residual additions -----------------------------------------------------------------
_ADDS = {operator.add, operator.iadd, torch.add}


@dataclass(frozen=True)
class ResidualAdd:
    node: fx.Node
    branch: fx.Node | None  # None: ambiguous
    skip: fx.Node | None
    reason: str


def weight_depths(graph: fx.Graph, modules: dict[str, nn.Module]) -> dict[fx.Node, int]:
    """Longest number of weight layers (conv/linear calls) on a path from an input to each
    node; -1 for nodes that do not depend on an input (constants, parameters)."""
    depth: dict[fx.Node, int] = {}
    for n in graph.nodes:
        if n.op == "placeholder":
            depth[n] = 0
            continue
        if _is_shape(n):  # x.shape, x.size(): metadata, not data flowing from the input
            depth[n] = -1
            continue
        ins = [depth[a] for a in n.all_input_nodes if a in depth]
        d = max(ins, default=-1)
        if d >= 0 and n.op == "call_module" and isinstance(modules[str(n.target)], WEIGHT_LAYERS):
            d += 1
        depth[n] = d
    return depth


def _is_shape(n: fx.Node) -> bool:
    if n.op == "call_function" and n.target is getattr:
        return len(n.args) > 1 and n.args[1] in ("shape", "ndim", "dtype", "device")
    if n.op == "call_method" and n.target in ("size", "dim", "numel"):
        return True
    # an item of a shape: x.shape[1]
    return (n.op == "call_function" and n.target is operator.getitem
            and isinstance(n.args[0], fx.Node) and _is_shape(n.args[0]))


def residual_adds(graph: fx.Graph, modules: dict[str, nn.Module]) -> list[ResidualAdd]:
    """Additions of two input-dependent tensors; the branch is the operand behind more
    weight layers (the shortcut has none, or a single projection)."""
    depth = weight_depths(graph, modules)
    out = []
    for n in graph.nodes:
        is_add = (n.op == "call_function" and n.target in _ADDS) or (
            n.op == "call_method" and n.target in ("add", "add_"))
        if not is_add or len(n.args) < 2:
            continue
        a, b = n.args[0], n.args[1]
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
            continue
        if depth[a] < 0 or depth[b] < 0:
            continue  # e.g. x + positional embedding: not a residual connection
        if "alpha" in n.kwargs:
            out.append(ResidualAdd(n, None, None, "an addition with alpha= is not handled"))
        elif depth[a] == depth[b]:
            out.append(ResidualAdd(n, None, None, f"both operands pass through {depth[a]} "
                                   "weight layers, so the branch cannot be told from the "
                                   "shortcut"))
        else:
            branch, skip = (a, b) if depth[a] > depth[b] else (b, a)
            out.append(ResidualAdd(n, branch, skip, ""))
    return out


def classifier_node(graph: fx.Graph, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The last nn.Linear call in execution order (the head)."""
    last = None
    for n in graph.nodes:
        if n.op == "call_module" and isinstance(modules[str(n.target)], nn.Linear):
            last = n
    return last


def batchnorm_functions(graph: fx.Graph) -> list[fx.Node]:
    """Functional batch_norm calls (BatchNorm without a module, which surgery cannot remove)."""
    fns = {F.batch_norm, torch.batch_norm}
    return [n for n in graph.nodes if n.op == "call_function" and n.target in fns]
