"""torch.fx analysis shared by the converters: tracing with a named failure, activations that
feed a layer, residual additions and which operand is the branch.

Only the graph is analysed: no ``GraphModule`` is built (its generated code is not valid
Python for module names holding quotes, and the converters edit modules, not code).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch.fx as fx
import torch.nn as nn

from signalprop.convert import _ops as O
from signalprop.convert._analysis import Analysis, Feed, Residual, settle_head
from signalprop.convert.report import ConversionError
from signalprop.nn import GammaAct


class _Tracer(fx.Tracer):
    """Standard leaves, plus signalprop's Scaled-WS layers (one node per layer call)."""

    def __init__(self, extra_leaves: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.extra_leaves = O.WS_LAYERS + extra_leaves

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, self.extra_leaves) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module, what: str, extra_leaves: tuple[type, ...] = ()) -> fx.Graph:
    """Symbolically trace ``model``; a failure names the innermost module being traced."""
    tracer = _Tracer(extra_leaves)
    try:
        return tracer.trace(model)
    except Exception as e:  # noqa: BLE001 -- any tracing failure is reported with its module
        where = [name for name, _ in tracer.module_stack.values() if name]
        mod = where[-1] if where else "<model>"
        kind = type(model.get_submodule(where[-1])).__name__ if where else type(model).__name__
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConversionError(
            f"{what} cannot analyse {type(model).__name__}: torch.fx tracing failed in module "
            f"'{mod}' ({kind}): {first}. Pass example_input= (a batch the model accepts) to "
            "find its structure on a real forward instead"
        ) from e


def scope(node: fx.Node) -> str:
    """Qualified name of the innermost module whose forward produced ``node``."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    names = [v[0] for v in stack.values() if v[0]]
    return names[-1] if names else "<model>"


def graph_analysis(model: nn.Module, what: str) -> Analysis:
    """The :class:`Analysis` of ``model`` from its torch.fx graph."""
    graph = trace(model, what)
    modules = dict(model.named_modules())
    out = Analysis("torch.fx graph")
    for n in graph.nodes:
        if n.op == "call_module":
            name = str(n.target)
            out.calls[name] = out.calls.get(name, 0) + 1
            out.feeds.setdefault(name, []).append(feeding_activation(n, modules))
            if isinstance(modules[name], nn.Linear):
                out.head = name  # the last nn.Linear call in execution order
    fns = O.BATCHNORM_FUNCTIONS
    out.functional_bn = sorted({scope(n) for n in graph.nodes
                                if n.op == "call_function" and n.target in fns})
    for add in residual_adds(graph, modules):
        block = scope(add.node)
        if add.branch is None:
            out.residuals.append(Residual(block, None, add.reason))
            continue
        end, why = _branch_end(add.branch, out.calls)
        out.residuals.append(Residual(block, end, why, _child(add.skip, block)))
    return settle_head(out)


def _child(node: fx.Node | None, block: str) -> str:
    """The child of module ``block`` whose call produced ``node`` ("" if none)."""
    if node is None or node.op != "call_module":
        return ""
    target = str(node.target)
    prefix = "" if block == "<model>" else block + "."
    if not target.startswith(prefix):
        return ""
    return prefix + target[len(prefix):].split(".")[0]


# ---- activations --------------------------------------------------------------------------
def node_activation(node: fx.Node, modules: dict[str, nn.Module]) -> O.Act | None:
    """The registered activation computed by ``node``, if it is one."""
    if node.op == "call_module":
        return O.module_activation(modules[str(node.target)])
    if node.op in ("call_function", "call_method"):
        return O.call_activation(node.target, tuple(node.args), dict(node.kwargs),
                                 method=node.op == "call_method")
    return None


def is_transparent(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], O.TRANSPARENT_MODULES)
    if node.op == "call_function":
        return node.target in O.TRANSPARENT_FUNCTIONS
    return node.op == "call_method" and node.target in O.TRANSPARENT_METHODS


def feeding_activation(node: fx.Node, modules: dict[str, nn.Module]) -> Feed:
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
_ADDS = {operator.add, operator.iadd, *O.ADD_FUNCTIONS}


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
        if d >= 0 and n.op == "call_module" and O.is_weight_layer(modules[str(n.target)]):
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


def _branch_end(node: fx.Node, calls: dict[str, int]) -> tuple[str | None, str]:
    """The module whose output ends the branch (a scalar gain commutes with the linear
    reshapes and dropouts walked through), or None and the reason."""
    cur = node
    while True:
        if len(cur.users) != 1:
            return None, f"the branch output '{cur.name}' is also used elsewhere"
        if cur.op == "call_module":
            name = str(cur.target)
            if calls[name] != 1:
                return None, f"module '{name}' ending the branch is called {calls[name]} times"
            return name, ""
        commuting = (cur.op == "call_function" and cur.target in O.COMMUTING_FUNCTIONS) or (
            cur.op == "call_method" and cur.target in O.COMMUTING_METHODS)
        if not commuting or not cur.args or not isinstance(cur.args[0], fx.Node):
            what = getattr(cur.target, "__name__", str(cur.target))
            return None, f"the branch ends in {cur.op} '{what}', not in a module"
        cur = cur.args[0]
