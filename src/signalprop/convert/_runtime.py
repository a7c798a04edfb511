"""The structure torch.fx reads from a graph, read from one real forward instead, for models
whose Python control flow makes them untraceable (every HuggingFace model: their forwards
branch on the config and on the input).

Module hooks keep the stack of running modules and record what each returned; a
torch-function mode sees every torch op in between. Each tensor value is tracked by
identity and version (an in-place op makes a new value of the same object): how many
weight layers lie between the input and it (-1: it does not depend on the input), the
activation that produced it (through transparent ops), the modules that returned it, the
op it came from, and how many ops used it. An addition of two input-dependent tensors of
one shape is a residual connection; the operand behind more weight layers is the branch,
and the outermost module that returned it inside the adding module ends the branch
(walking back through reshapes and dropouts, which commute with a scalar gain) -- the same
rules as the graph analysis, applied to what the forward did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    call_model,
    hooks_removed_after,
    locate_failure,
    module_names,
)
from signalprop.convert import _ops as O
from signalprop.convert._analysis import Analysis, Feed, Residual, settle_head
from signalprop.convert.report import ConversionError
from signalprop.nn import GammaAct

Key = tuple[int, int]  # (id of the tensor object, its version)


def _key(t: Tensor) -> Key:
    return id(t), t._version


def _tensors(obj: Any) -> list[Tensor]:
    return [t for t in tree_leaves(obj) if isinstance(t, Tensor)]


@dataclass(eq=False)
class _Call:
    name: str
    module: nn.Module
    parent: _Call | None
    depth: int  # weight depth of its inputs
    feed: Feed


@dataclass(eq=False)
class _Value:
    tensor: Tensor  # held so that its id is not reused during the forward
    depth: int
    feed: Feed | None = None
    returned: list[tuple[_Call, int]] = field(default_factory=list)  # (call, output element)
    op: str = ""
    source: Key | None = None  # the input of the commuting op that produced it
    uses: int = 0


class _Recorder(TorchFunctionMode):
    """Hooks and torch-function mode recording one forward (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.names = module_names(model)
        self.stack: list[_Call] = []
        self.values: dict[Key, _Value] = {}
        self.adds: list[tuple[_Call | None, Key | None, str, str]] = []
        self.out = Analysis("forward hooks on example_input")

    def start(self, t: Tensor) -> None:
        """Register ``t`` as an input of the model (weight depth 0)."""
        self.values[_key(t)] = _Value(t, 0)

    def depth(self, k: Key) -> int:
        v = self.values.get(k)
        return v.depth if v is not None else -1

    def scope(self) -> str:
        return self.stack[-1].name if self.stack else "<model>"

    # ---- torch ops ----------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        ins = [_key(t) for t in _tensors((args, kwargs))]
        method = O.tensor_method(func)
        if func in O.BATCHNORM_FUNCTIONS and not (
                self.stack and isinstance(self.stack[-1].module, O.BATCHNORMS)):
            self.out.functional_bn.append(self.scope())
        is_add = func in O.ADD_FUNCTIONS or method in O.ADD_METHODS
        if is_add and len(args) >= 2 and all(isinstance(a, Tensor) for a in args[:2]):
            self._addition(args[0], args[1], kwargs)
        out = func(*args, **kwargs)
        outs = _tensors(out)
        if outs:
            self._record(func, method, args, kwargs, ins, outs)
        return out

    def _addition(self, a: Tensor, b: Tensor, kwargs: dict) -> None:
        ka, kb = _key(a), _key(b)
        da, db = self.depth(ka), self.depth(kb)
        if da < 0 or db < 0 or a.shape != b.shape:
            return  # x + positional embedding, + a bias: not a residual connection
        block = self.stack[-1] if self.stack else None
        if "alpha" in kwargs:
            self.adds.append((block, None, "", "an addition with alpha= is not handled"))
        elif da == db:
            if block is not None and da == block.depth:
                return  # elementwise maths on one value (tanh-GELU's x + c x^3): no weights
            self.adds.append((block, None, "", f"both operands pass through {da} weight "
                              "layers, so the branch cannot be told from the shortcut"))
        else:
            branch, skip = (ka, kb) if da > db else (kb, ka)
            self.adds.append((block, branch, self._returned_by(skip, block), ""))

    def _record(self, func: Any, method: str | None, args: tuple, kwargs: dict,
                ins: list[Key], outs: list[Tensor]) -> None:
        out_keys = {_key(t) for t in outs}
        for k in ins:  # an op returning its input unchanged (eval dropout) does not use it
            if k in self.values and k not in out_keys:
                self.values[k].uses += 1
        depth = max((self.depth(k) for k in ins), default=-1)
        name = method or getattr(func, "__name__", type(func).__name__)
        act = O.call_activation(method or func, args, kwargs, method=method is not None)
        first = self.values.get(ins[0]) if ins else None
        feed: Feed | None = None
        if act is not None:
            feed = (act, f"'{name}' in '{self.scope()}'")
        elif first is not None and (func in O.TRANSPARENT_FUNCTIONS
                                    or method in O.TRANSPARENT_METHODS):
            feed = first.feed
        commuting = func in O.COMMUTING_FUNCTIONS or method in O.COMMUTING_METHODS
        source = ins[0] if commuting and ins and len(outs) == 1 else None
        for t in outs:
            k = _key(t)
            if k not in self.values:
                self.values[k] = _Value(t, depth, feed, op=name, source=source)

    # ---- module hooks -------------------------------------------------------------------
    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        name = name or "<model>"
        tensors = _tensors((args, kwargs))
        depth = max((self.depth(_key(t)) for t in tensors), default=-1)
        first = self.values.get(_key(tensors[0])) if tensors else None
        feed = first.feed if first is not None and first.feed is not None else (None, "")
        self.out.calls[name] = self.out.calls.get(name, 0) + 1
        self.out.feeds.setdefault(name, []).append(feed)
        if tensors:
            self.out.shapes.setdefault(name, []).append(tuple(tensors[0].shape))
        if isinstance(module, nn.Linear):
            self.out.head = name  # the last nn.Linear to run
        self.stack.append(_Call(name, module, self.stack[-1] if self.stack else None, depth,
                                feed))

    def post(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        if not self.stack or self.stack[-1].module is not module:
            return
        call = self.stack.pop()
        if isinstance(out, Tensor):
            elements = [(out, 0)]
        elif isinstance(out, (tuple, list)):
            elements = [(t, i) for i, t in enumerate(out) if isinstance(t, Tensor)]
        else:
            elements = []
        for t, i in elements:
            v = self.values.setdefault(_key(t), _Value(t, call.depth))
            v.returned.append((call, i))
            if i == 0 and call.depth >= 0 and O.is_weight_layer(module):
                v.depth = max(v.depth, call.depth + 1)
            act = O.module_activation(module)
            if act is not None:
                v.feed = (act, f"'{call.name}'")
            elif isinstance(module, GammaAct):
                v.feed = (None, f"'{call.name}' (GammaAct, gain applied already)")
            elif isinstance(module, O.TRANSPARENT_MODULES) and v.feed is None:
                v.feed = call.feed if call.feed[0] is not None else None

    # ---- after the forward --------------------------------------------------------------
    def _returned_by(self, k: Key, block: _Call | None) -> str:
        v = self.values.get(k)
        inner = [c.name for c, _ in v.returned if c.parent is block] if v is not None else []
        return inner[-1] if inner else ""

    def _branch_end(self, k: Key, block: _Call | None) -> tuple[str | None, str]:
        while True:
            v = self.values[k]
            if v.uses != 1:
                return None, f"the branch output ('{v.op or 'a module output'}') is also used " \
                             "elsewhere"
            inner = [(c, i) for c, i in v.returned if c.parent is block]
            if inner:
                return self._end_module(inner)
            if v.source is None:
                return None, f"the branch ends in '{v.op}', not in a module"
            k = v.source

    def _end_module(self, inner: list[tuple[_Call, int]]) -> tuple[str | None, str]:
        """The outermost of the block's children that returned the branch and runs once;
        a dropout or identity shared by several branches (ViT's ``self.dropout``) is passed
        over for the module before it: it commutes with the gain."""
        for c, i in reversed(inner):
            n = self.out.calls[c.name]
            if i == 0 and n == 1:
                return c.name, ""
            if not O.is_pass_through(c.module):
                what = f"is called {n} times" if i == 0 else f"returns the branch as element {i}"
                return None, f"module '{c.name}' ending the branch {what}"
        c, _ = inner[0]
        return None, f"module '{c.name}' ending the branch is called {self.out.calls[c.name]} times"

    def finish(self) -> Analysis:
        seen = set()
        for block, branch, skip, reason in self.adds:
            name = block.name if block is not None else "<model>"
            if branch is None:
                r = Residual(name, None, reason)
            else:
                end, why = self._branch_end(branch, block)
                r = Residual(name, end, why, skip)
            if r not in seen:
                seen.add(r)
                self.out.residuals.append(r)
        self.out.functional_bn = sorted(set(self.out.functional_bn))
        return settle_head(self.out)


def runtime_analysis(model: nn.Module, x: ModelInput, what: str) -> Analysis:
    """The :class:`Analysis` of ``model`` from one eval-mode forward on ``x`` (no gradient,
    buffers and train/eval flags restored). A failing forward raises ConversionError naming
    the module where it failed."""
    rec = _Recorder(model)
    record_forward(model, x, what, rec)
    return rec.finish()


def record_forward(model: nn.Module, x: ModelInput, what: str, rec: _Recorder) -> None:
    """Run one eval-mode forward of ``model`` on ``x`` under recorder ``rec`` (its hooks and
    torch-function mode), with no gradient and buffers and train/eval flags restored."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        with hooks_removed_after() as handles:
            for m in model.modules():
                handles.append(m.register_forward_pre_hook(rec.pre, with_kwargs=True))
                handles.append(m.register_forward_hook(rec.post, with_kwargs=True))
            model.eval()
            with torch.no_grad(), buffers_restored(model), rec:
                for t in _tensors(x):
                    rec.start(t)
                call_model(model, x)
    except Exception as e:  # noqa: BLE001 -- reported with the module where it failed
        err = locate_failure(model, x, e)
        raise ConversionError(f"{what}: the forward on example_input failed ({err})") from e
    finally:
        for m, flag in flags:
            m.training = flag
