"""One segment: the ops between its first and last convolution, the single convolution
equal to them (activations replaced by the identity), and how to put it in the model by
replacing modules.

The segment's input is its first convolution's input; its interior is every op on a path
from that input to its last convolution. Interior ops may be convolutions (all of them
listed in the segment), eval BatchNorms, activations (removed), eval no-ops and residual
additions of two interior values; no interior value may be used outside the segment. A
BatchNorm and a residual addition right after the last convolution are taken in too (the
addition where its other operand comes from the segment: an identity shortcut whose
source is inside is absorbed into the kernel, a centre tap of weight one).

Module surgery: the merged convolution replaces the first convolution, or the outermost
module around it whose every op lies in the segment; every other module of the segment
becomes ``nn.Identity``. An activation or addition called as a function in a forward can
only be removed with the module whose forward calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from signalprop.convert.compress._opgraph import WS_CONVS, Op, OpGraph
from signalprop.convert.compress._spec import (
    ConvSpec,
    MergeError,
    conv_spec,
    identity_spec,
    plus,
    then_affine,
    then_conv,
)
from signalprop.convert.fold import _plain

_ALLOWED = ("conv", "bn", "act", "noop", "add")


@dataclass
class Segment:
    """A segment's ops, the merged map, and the modules that replace its modules.

    Attributes:
        convs: the convolutions' names, in execution order.
        start: the op producing the segment's input; end: the op producing its output.
        ops: the segment's ops (interior and the BatchNorm / addition taken after it).
        spec: the merged convolution.
        entry: the module that becomes the merged convolution.
        identities: the modules that become ``nn.Identity``.
    """

    convs: list[str]
    start: int
    end: int
    ops: list[int]
    spec: ConvSpec
    entry: str = ""
    identities: list[str] = field(default_factory=list)

    def removed(self, graph: OpGraph, role: str) -> list[Op]:
        return [graph.ops[i] for i in self.ops if graph.ops[i].role == role]


def _label(op: Op) -> str:
    if op.module is not None:
        return f"'{op.name}' ({type(op.module).__name__})"
    where = f" in '{op.scope}'" if op.scope else " in the model's forward"
    return f"'{op.name}'{where}"


def _reach(graph: OpGraph, start: int, last: int) -> list[int]:
    """Ops on a path from ``start`` (excluded) to ``last`` (included), in order."""
    fwd, todo = set(), [start]
    while todo:
        for u in graph.ops[todo.pop()].users:
            if u not in fwd and u <= last:
                fwd.add(u)
                todo.append(u)
    back, todo = {last}, [last]
    while todo:
        for i in graph.ops[todo.pop()].inputs:
            if i not in back and i > start:
                back.add(i)
                todo.append(i)
    return sorted(fwd & back)


def _tail(graph: OpGraph, inside: set[int], start: int, end: int) -> list[int]:
    """A BatchNorm, then a residual addition of a segment value, right after ``end``."""
    tail = []
    for role in ("bn", "add"):
        users = graph.ops[end].users
        if len(users) != 1 or graph.ops[users[0]].role != role:
            continue
        u = graph.ops[users[0]]
        others = [i for i in u.inputs if i != end]
        if role == "add" and not (len(others) == 1 and others[0] in inside | {start}):
            continue
        tail.append(u.index)
        end = u.index
    return tail


def _check(graph: OpGraph, names: list[str], start: int, ops: list[int], seg: str) -> None:
    member = set(ops)
    for i in ops:
        op = graph.ops[i]
        if op.role not in _ALLOWED:
            raise MergeError(f"{seg}: {_label(op)} lies between its convolutions; only "
                             "BatchNorm, activations, dropout/identity and residual "
                             "additions can")
        for j in op.inputs:
            if j != start and j not in member and graph.ops[j].live:
                raise MergeError(f"{seg}: {_label(op)} takes {_label(graph.ops[j])}, "
                                 "which comes from outside the segment")
        if op.role == "conv" and graph.calls[op.name] != 1:
            raise MergeError(f"{seg}: '{op.name}' is called {graph.calls[op.name]} times")
    inner = [graph.ops[i].name for i in ops if graph.ops[i].role == "conv"]
    if inner != names:
        missing = [n for n in inner if n not in names]
        what = f"also list {missing}" if missing else f"the convolutions run as {inner}"
        raise MergeError(f"{seg}: the convolutions from the first to the last are not the "
                         f"listed ones ({what})")
    for i in ops[:-1]:
        out = [u for u in graph.ops[i].users if u not in member]
        if out:
            raise MergeError(f"{seg}: the output of {_label(graph.ops[i])} is also used by "
                             f"{_label(graph.ops[out[0]])} outside the segment")


def _bn_affine(bn: nn.Module, seg: str, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if bn.running_mean is None or bn.running_var is None:
        raise MergeError(f"{seg}: BatchNorm '{name}' keeps no running statistics, so it is "
                         "not an affine map in eval mode")
    var = bn.running_var.detach().double()
    scale = torch.rsqrt(var + bn.eps)
    shift = -bn.running_mean.detach().double() * scale
    if bn.affine:
        scale, shift = scale * bn.weight.detach().double(), \
            shift * bn.weight.detach().double() + bn.bias.detach().double()
    return scale, shift


def _build(graph: OpGraph, first: Op, ops: list[int], seg: str, policy: str) -> ConvSpec:
    conv = first.module
    nd = len(conv.kernel_size)
    specs = {first.inputs[0]: identity_spec(conv.in_channels, nd)}
    for i in ops:
        op = graph.ops[i]
        ins = [specs[j] for j in op.inputs if j in specs]
        if op.role == "conv":
            with torch.no_grad():
                m = _plain(op.module) if isinstance(op.module, WS_CONVS) else op.module
            specs[i] = then_conv(ins[0], conv_spec(m, op.name), op.name, seg, policy)
        elif op.role == "bn":
            specs[i] = then_affine(ins[0], *_bn_affine(op.module, seg, op.name))
        elif op.role == "add":
            specs[i] = plus(ins[0], ins[1], seg, f"the addition {_label(op)}")
        else:  # activation (removed) or no-op
            specs[i] = ins[0]
    return specs[ops[-1]]


def _tail_fallback(graph: OpGraph, start: int, tail: list[int]) -> bool:
    """Whether the addition ending ``tail`` may stay outside: its shortcut is the input."""
    return bool(tail) and graph.ops[tail[-1]].role == "add" and start in graph.ops[
        tail[-1]].inputs


def analyse_segment(graph: OpGraph, names: list[str], policy: str, what: str) -> Segment:
    """The :class:`Segment` of convolutions ``names`` (MergeError naming what blocks it)."""
    seg = f"{what}: segment {names}"
    by_name = graph.by_module()
    for n in names:
        if n not in by_name or by_name[n].role != "conv":
            kind = type(by_name[n].module).__name__ if n in by_name else "no module that ran"
            raise MergeError(f"{seg}: '{n}' is not a convolution that ran ({kind})")
    first, last = by_name[names[0]], by_name[names[-1]]
    start = first.inputs[0]
    interior = _reach(graph, start, last.index)
    if not interior or interior[0] != first.index:
        raise MergeError(f"{seg}: '{names[-1]}' does not take its input from '{names[0]}'")
    tail = _tail(graph, set(interior), start, last.index)
    tries = [interior + tail] + ([interior + tail[:-1]] if _tail_fallback(graph, start, tail)
                                 else [])
    for k, ops in enumerate(tries):
        try:
            _check(graph, names, start, ops, seg)
            spec = _build(graph, first, ops, seg, policy)
            segment = Segment(names, start, ops[-1], ops, spec)
            plan_surgery(graph, segment, seg)
            return segment
        except MergeError:
            if k == len(tries) - 1:
                raise
    raise AssertionError("unreachable")


# ---- module surgery ---------------------------------------------------------------------
def _owner(op: Op) -> str:
    return op.name if op.module is not None else op.scope


def _inside(owner: str, unit: str) -> bool:
    return owner == unit or owner.startswith(unit + ".")


def _unit_io(graph: OpGraph, unit: str) -> tuple[list[int], set[int], set[int]]:
    """The ops run by module ``unit`` (or its children), the ops outside it they take
    (live) inputs from, and those of its ops used outside it."""
    if unit in graph.units:
        return graph.units[unit]
    mine = [op.index for op in graph.ops if op.role not in ("input", "const", "output")
            and _inside(_owner(op), unit)]
    own = set(mine)
    ins = {j for i in mine for j in graph.ops[i].inputs
           if j not in own and graph.ops[j].live}
    outs = {i for i in mine if any(u not in own for u in graph.ops[i].users)}
    graph.units[unit] = mine, ins, outs
    return mine, ins, outs


def _absorbed(graph: OpGraph, unit: str, member: set[int]) -> bool:
    """Whether module ``unit`` can be replaced whole: every op it runs is in the segment,
    and it takes one value and returns one (none read: the model's output, in a forward)."""
    if not unit:
        return False
    mine, ins, outs = _unit_io(graph, unit)
    return bool(mine) and set(mine) <= member and len(ins) == 1 and len(outs) <= 1


def _unit(graph: OpGraph, op: Op, member: set[int], seg: str) -> str | None:
    owner = _owner(op)
    parts = owner.split(".") if owner else []
    for k in range(1, len(parts) + 1):
        unit = ".".join(parts[:k])
        if _absorbed(graph, unit, member):
            return unit
    if op.module is None and op.role == "noop":
        return None  # an eval no-op called as a function stays where it is
    if op.module is not None:
        n = graph.calls[op.name]
        why = f"is called {n} times" if n > 1 else "cannot be replaced on its own"
        raise MergeError(f"{seg}: {_label(op)} {why}")
    raise MergeError(f"{seg}: {_label(op)} is called as a function, so it can only be "
                     "removed with the module whose forward calls it, and that module "
                     "also runs ops outside the segment")


def plan_surgery(graph: OpGraph, segment: Segment, seg: str) -> None:
    """Fill ``segment.entry`` and ``segment.identities`` (see the module docstring)."""
    member = set(segment.ops)
    units: list[str] = []
    for i in segment.ops:
        unit = _unit(graph, graph.ops[i], member, seg)
        if unit is not None and unit not in units:
            units.append(unit)
    first = graph.ops[segment.ops[0]]
    entry = next(u for u in units if _inside(first.name, u))
    _, ins, _ = _unit_io(graph, entry)
    if ins != {segment.start}:
        raise MergeError(f"{seg}: module '{entry}' around the first convolution takes "
                         "other inputs than the segment's")
    segment.entry = entry
    segment.identities = [u for u in units if u != entry]
