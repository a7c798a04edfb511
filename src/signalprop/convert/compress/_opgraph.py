"""The dataflow between a model's layers as a list of ops in execution order, read from
its torch.fx graph or from one real forward (the recorder of ``convert/_runtime.py``,
extended to note which op produced each tensor).

Each op has a role: a convolution, an (eval) BatchNorm, an activation, a no-op in eval
mode (identity, dropout), a residual addition of two input-dependent tensors, the model
input, a constant, or anything else ("other", which no merge crosses).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop._forward import ModelInput
from signalprop.convert import _graph as G
from signalprop.convert import _ops as O
from signalprop.convert._runtime import _key, _Recorder, _tensors, record_forward
from signalprop.nn import GammaAct, ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
WS_CONVS = (ScaledStdConv1d, ScaledStdConv2d, ScaledStdConv3d)
_EXTRA_ACTS = (nn.Hardswish, nn.Hardtanh, nn.PReLU, nn.RReLU, GammaAct)
_ADDS = {operator.add, operator.iadd, torch.add}
_NOOP_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout}
_NOOP_METHODS = {"contiguous"}


@dataclass(eq=False)
class Op:
    """One op: ``role``, the module (or function) ``name``, the module whose forward ran
    it (``scope``, "" for the root), and the ops producing its tensor inputs."""

    index: int
    role: str
    name: str
    scope: str
    inputs: list[int]
    module: nn.Module | None = None
    shape: tuple[int, ...] | None = None  # its first input's shape (forward only)
    users: list[int] = field(default_factory=list)
    live: bool = True  # depends on the model input


@dataclass
class OpGraph:
    """The ops of one forward, in execution order, and how often each module ran."""

    ops: list[Op]
    method: str
    calls: dict[str, int]
    units: dict[str, Any] = field(default_factory=dict, repr=False)  # analysis cache

    def convs(self) -> list[Op]:
        return [op for op in self.ops if op.role == "conv"]

    def by_module(self) -> dict[str, Op]:
        return {op.name: op for op in self.ops if op.module is not None}


def module_role(m: nn.Module) -> str:
    if type(m) in CONVS or isinstance(m, WS_CONVS):
        return "conv"
    if isinstance(m, O.BATCHNORMS):
        return "bn"
    if O.module_activation(m) is not None or isinstance(m, _EXTRA_ACTS):
        return "act"
    return "noop" if O.is_pass_through(m) else "other"


def function_role(target: Any, args: tuple, kwargs: dict, live: list[bool],
                  method: bool) -> str:
    if O.call_activation(target, args, kwargs, method=method) is not None:
        return "act"
    is_add = target in O.ADD_METHODS or target in ("add", "add_") if method else \
        target in _ADDS
    if is_add:
        both = len(live) == 2 and all(live) and len(args) >= 2
        return "add" if both and "alpha" not in kwargs else "other"
    noop = target in _NOOP_METHODS if method else target in _NOOP_FUNCTIONS
    return "noop" if noop else "other"


def _finish(ops: list[Op], method: str) -> OpGraph:
    calls: dict[str, int] = {}
    for op in ops:
        for i in op.inputs:
            ops[i].users.append(op.index)
        if op.module is not None:
            calls[op.name] = calls.get(op.name, 0) + 1
    return OpGraph(ops, method, calls)


# ---- from a torch.fx graph --------------------------------------------------------------
def fx_graph(model: nn.Module, what: str) -> OpGraph:
    """The :class:`OpGraph` of ``model`` from its torch.fx graph (GammaAct kept whole)."""
    graph = G.trace(model, what, extra_leaves=(GammaAct,))
    modules = dict(model.named_modules())
    index: dict[fx.Node, int] = {}
    ops: list[Op] = []
    for n in graph.nodes:
        ins = [index[a] for a in n.all_input_nodes if a in index]
        live = [ops[i].live for i in ins]
        if n.op == "placeholder":
            op = Op(len(ops), "input", str(n.target), "", [])
        elif n.op == "get_attr":
            op = Op(len(ops), "const", str(n.target), "", [], live=False)
        elif n.op == "call_module":
            m = modules[str(n.target)]
            op = Op(len(ops), module_role(m), str(n.target), "", ins, m, live=any(live))
        elif n.op in ("call_function", "call_method"):
            tensor_live = [ops[index[a]].live for a in n.args[:2] if isinstance(a, fx.Node)]
            role = function_role(n.target, tuple(n.args), dict(n.kwargs), tensor_live,
                                 n.op == "call_method")
            scope = G.scope(n)
            name = n.target if isinstance(n.target, str) else getattr(
                n.target, "__name__", str(n.target))
            op = Op(len(ops), role, name, "" if scope == "<model>" else scope, ins,
                    live=any(live))
        else:  # output
            op = Op(len(ops), "output", "output", "", ins)
        index[n] = op.index
        ops.append(op)
    return _finish(ops, "torch.fx graph")


# ---- from one forward -------------------------------------------------------------------
class _OpRecorder(_Recorder):
    """The runtime recorder, also noting an op for every leaf-module call and for every
    torch function called outside leaf modules, with the ops producing its inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.ops: list[Op] = []
        self.producer: dict[tuple[int, int], int] = {}
        self.pending: list[tuple[list[int], tuple[int, ...] | None]] = []

    def _inputs(self, tensors: list[Tensor]) -> list[int]:
        return [self.producer[_key(t)] for t in tensors if _key(t) in self.producer]

    def _add(self, op: Op, outs: list[Tensor]) -> None:
        self.ops.append(op)
        for t in outs:
            self.producer.setdefault(_key(t), op.index)

    def start(self, t: Tensor) -> None:
        super().start(t)
        self._add(Op(len(self.ops), "input", "input", "", []), [t])

    def _in_leaf(self) -> bool:
        return bool(self.stack) and _leaf(self.stack[-1].module)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self._in_leaf():
            return super().__torch_function__(func, types, args, kwargs)
        ins = self._inputs(_tensors((args, kwargs)))
        out = super().__torch_function__(func, types, args, kwargs)
        outs = _tensors(out)
        if outs:
            method = O.tensor_method(func)
            first = [a for a in args[:2] if isinstance(a, Tensor)]
            live = [_key(a) in self.producer and self.ops[self.producer[_key(a)]].live
                    for a in first]
            role = function_role(method or func, args, kwargs, live, method is not None)
            name = method or getattr(func, "__name__", type(func).__name__)
            scope = self.scope()
            self._add(Op(len(self.ops), role, name, "" if scope == "<model>" else scope, ins,
                         live=any(self.ops[i].live for i in ins)), outs)
        return out

    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        leaf = _leaf(module) and not self._in_leaf()
        super().pre(module, args, kwargs)
        if leaf:
            tensors = _tensors((args, kwargs))
            shape = tuple(tensors[0].shape) if tensors else None
            self.pending.append((self._inputs(tensors), shape))

    def post(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        call = self.stack[-1] if self.stack else None
        if call is not None and call.module is module and _leaf(module) and self.pending \
                and not (len(self.stack) > 1 and _leaf(self.stack[-2].module)):
            ins, shape = self.pending.pop()
            self._add(Op(len(self.ops), module_role(module), call.name, "", ins, module,
                         shape, live=any(self.ops[i].live for i in ins)), _tensors(out))
        super().post(module, args, kwargs, out)


def _leaf(m: nn.Module) -> bool:
    return isinstance(m, (*WS_CONVS, GammaAct)) or next(iter(m.children()), None) is None


def forward_graph(model: nn.Module, x: ModelInput, what: str) -> OpGraph:
    """The :class:`OpGraph` of ``model`` from one eval-mode forward on ``x``."""
    rec = _OpRecorder(model)
    record_forward(model, x, what, rec)
    return _finish(rec.ops, "forward hooks on example_input")
