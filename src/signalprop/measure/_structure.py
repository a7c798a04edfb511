"""What a model's forward really computes: which modules add a skip connection.

A *skip addition* is an addition ``a + b`` (or ``a - b``) in the forward whose two operands
both depend on an earlier tensor F (the *fork*) along separate paths, at least one of which
passes through a trainable parameter: ``x + f(x)`` (identity shortcut), ``proj(x) + f(x)``
(projection shortcut), a post-norm ``LN(x + f(x))`` and a post-activation
``relu(x + f(x))``. ``x - mean(x)`` (a LayerNorm written by hand), ``x + 0.044715 x^3``
(a GELU) and ``x + pos`` (an added embedding) are not skips: no parameter lies between the
fork and the addition, or the operands share no fork.

:func:`probe_structure` measures this on one real forward with autograd recording (the
graph is read, nothing is differentiated): every module call is timed by autograd's
sequence numbers, and each skip addition belongs to the innermost module call that holds
the whole skip (its fork is that call's input or was computed inside it, and so was every
node between the fork and the addition). Nothing here reads class names.

Examples:
    >>> import torch
    >>> class Res(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return x + self.fc(x)
    >>> model = nn.Sequential(nn.Linear(4, 4), Res(), Res())
    >>> s = probe_structure(model, torch.randn(3, 4))
    >>> s.owners, sorted(s.identity)
    ({'1': 1, '2': 1}, ['1', '2'])
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch.utils import _pytree as pytree

from signalprop._forward import ModelInput, buffers_restored, call_model, hooks_removed_after

_JOINS = ("AddBackward0", "SubBackward0")
# nodes that pass a tensor on unchanged up to its layout (a shortcut may go through them)
_LAYOUT = ("ViewBackward0", "UnsafeViewBackward0", "PermuteBackward0", "TransposeBackward0",
           "CloneBackward0", "ToCopyBackward0", "ExpandBackward0", "AliasBackward0",
           "ReshapeAliasBackward0", "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2",
           "UnsqueezeBackward0", "ContiguousBackward0")


@dataclass
class ModelStructure:
    """The skip additions of one forward, by the module that holds each.

    Attributes:
        order: every module that ran, by qualified name, in the order of first call.
        owners: module name -> number of skip additions it holds innermost (the root as
            ``"<model>"``).
        identity: modules whose output is their input plus other terms (``y = x + ...``
            through additions and layout changes only, as in pre-norm residual blocks):
            for them ``y - x`` is the sum of the residual branches.
    """

    order: list[str] = field(default_factory=list)
    owners: dict[str, int] = field(default_factory=dict)
    identity: set[str] = field(default_factory=set)

    def contains_skip(self, name: str) -> bool:
        """Whether module ``name`` or one of its submodules holds a skip addition."""
        if name in ("", "<model>"):
            return bool(self.owners)
        return any(o == name or o.startswith(f"{name}.") for o in self.owners)

    def skip_kind(self, name: str) -> str | None:
        """``"identity"`` (output = input + branches), ``"inner"`` (a skip inside, then a
        normalization, activation or projection), or None (no skip addition inside)."""
        if not self.contains_skip(name):
            return None
        return "identity" if name in self.identity else "inner"


@dataclass
class _Call:
    name: str
    start: int
    end: int = -1
    inputs: frozenset[int] = frozenset()  # ids of the input tensors' autograd nodes
    output: Any = None  # the output's autograd node


def _now() -> int:
    """The current autograd sequence number (one throwaway node)."""
    return (torch.zeros((), requires_grad=True) * 1).grad_fn._sequence_nr()  # type: ignore[union-attr]


def _node(t: torch.Tensor) -> Any:
    return torch.autograd.graph.get_gradient_edge(t).node if t.requires_grad else None


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    for leaf in pytree.tree_leaves(obj):
        if isinstance(leaf, torch.Tensor) and leaf.is_floating_point() and leaf.requires_grad:
            yield leaf


def _seq(node: Any) -> int:
    return -1 if type(node).__name__ == "AccumulateGrad" else node._sequence_nr()


def _inputs(node: Any) -> list[Any]:
    return [n for n, _ in node.next_functions if n is not None]


class _Graph:
    """The recorded autograd graph of one forward, read without differentiating."""

    def __init__(self, params: set[int]) -> None:
        self.params = params
        self.alive: list[Any] = []  # keeps every node object seen (ids stay unique)

    def is_param(self, node: Any) -> bool:
        var = getattr(node, "variable", None)
        return var is not None and id(var) in self.params

    def nodes(self, roots: list[Any]) -> list[Any]:
        """Every node reachable from ``roots``."""
        seen: set[int] = set()
        out: list[Any] = []
        stack = [r for r in roots if r is not None]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            out.append(n)
            stack.extend(_inputs(n))
        self.alive += out
        return out

    def fork(self, a: Any, b: Any) -> Any | None:
        """The latest node (highest sequence number) both ``a`` and ``b`` depend on,
        trainable parameters excluded; None when they share none."""
        if a is b:
            return a
        flags: dict[int, int] = {}
        done: set[int] = set()
        heap: list[tuple[int, int, Any]] = []
        live = [0, 0, 0, 0]  # nodes waiting in the heap, by flag value

        def push(n: Any, f: int) -> None:
            old = flags.get(id(n), 0)
            if id(n) in done or old | f == old:
                return
            if not old:
                heapq.heappush(heap, (-_seq(n), id(n), n))
                self.alive.append(n)
            live[old] -= 1 if old else 0
            flags[id(n)] = old | f
            live[old | f] += 1

        push(a, 1)
        push(b, 2)
        while heap and live[3] + min(live[1], live[2]) > 0:
            _, key, n = heapq.heappop(heap)
            f = flags[key]
            done.add(key)
            live[f] -= 1
            if self.is_param(n):
                continue
            if f == 3:
                return n
            for c in _inputs(n):
                push(c, f)
        return None

    def between(self, join: Any, fork: Any) -> tuple[int, bool]:
        """(lowest sequence number, whether a trainable parameter is used) over the nodes
        on the paths from ``fork`` to ``join`` (fork excluded)."""
        floor = _seq(fork)
        reach: dict[int, bool] = {id(fork): True}
        seen: dict[int, Any] = {}
        stack: list[tuple[Any, bool]] = [(join, False)]
        while stack:
            n, finished = stack.pop()
            if finished:
                reach[id(n)] = any(reach.get(id(c), False) for c in _inputs(n))
                continue
            if id(n) in seen or id(n) in reach:
                continue
            seen[id(n)] = n
            if _seq(n) <= floor:
                reach[id(n)] = False
                continue
            stack.append((n, True))
            stack.extend((c, False) for c in _inputs(n))
        on_path = [n for k, n in seen.items() if reach.get(k)]
        self.alive += on_path
        low = min(_seq(n) for n in on_path)
        uses_param = any(self.is_param(c) for n in on_path for c in _inputs(n))
        return low, uses_param


def _adds_input(node: Any, inputs: frozenset[int], depth: int = 0) -> bool:
    """Whether ``node`` is its module's input plus other terms (additions and layout
    changes only between them)."""
    while node is not None and depth < 64:
        if id(node) in inputs:
            return True
        if type(node).__name__ not in _LAYOUT:
            break
        nxt = _inputs(node)
        node, depth = (nxt[0] if len(nxt) == 1 else None), depth + 1
    if node is None or depth >= 64:
        return False
    if type(node).__name__ != "AddBackward0":
        return False
    return any(_adds_input(c, inputs, depth + 1) for c in _inputs(node))


def _owner(calls: list[_Call], join: Any, fork: Any, low: int) -> str | None:
    """The innermost call holding the whole skip: the join and every node after the fork
    happened inside it, and the fork is its input or was computed inside it."""
    best: _Call | None = None
    s_join, s_fork = _seq(join), _seq(fork)
    for c in calls:
        if not (c.start < low and s_join < c.end):
            continue
        if not (s_fork > c.start or id(fork) in c.inputs):
            continue
        if best is None or c.start >= best.start:
            best = c
    return best.name if best is not None else None


def _leaf_inputs(x: ModelInput) -> ModelInput:
    """Floating inputs as fresh leaves that require grad (so the input is a graph node)."""
    def leaf(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            return t.detach().requires_grad_(True)
        return t
    return pytree.tree_map(leaf, x)


def small_batch(x: ModelInput, n: int = 2) -> ModelInput | None:
    """The first ``n`` examples of every tensor when they all share a first axis longer
    than ``n``; None otherwise (then the whole input is used)."""
    ts = [t for t in pytree.tree_leaves(x) if isinstance(t, torch.Tensor)]
    if not ts or any(t.dim() == 0 for t in ts) or len({t.shape[0] for t in ts}) != 1:
        return None
    if ts[0].shape[0] <= n:
        return None
    return pytree.tree_map(lambda t: t[:n] if isinstance(t, torch.Tensor) else t, x)


def _record(model: nn.Module, x: ModelInput) -> tuple[list[_Call], Any]:
    """Run the forward with every module call timed; (calls, the model's output)."""
    names: dict[int, str] = {}
    for n, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), n or "<model>")
    calls: list[_Call] = []
    stack: list[_Call] = []

    def pre(mod: nn.Module, args: Any, kwargs: Any) -> None:
        nodes = [_node(t) for t in _tensors((args, kwargs))]
        c = _Call(names[id(mod)], _now(),
                  inputs=frozenset(id(n) for n in nodes if n is not None))
        c.output = nodes  # keeps the input nodes alive until the output replaces them
        stack.append(c)
        calls.append(c)

    def post(mod: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
        if not stack:
            return
        c = stack.pop()
        c.end = _now()
        outs = [_node(t) for t in _tensors(out)]
        c.output = (outs[0] if outs else None, c.output)

    with hooks_removed_after() as handles:
        for m in {id(m): m for m in model.modules()}.values():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
        # random layers draw as in any forward: the measurement after this one must see
        # the random numbers it would have seen without the probe
        with torch.random.fork_rng(devices=cuda), torch.enable_grad(), \
                buffers_restored(model):
            out = call_model(model, x)
    return calls, out


def probe_structure(model: nn.Module, x: ModelInput) -> ModelStructure:
    """Find the skip additions of ``model`` on input ``x`` (see the module docstring).

    One forward runs with autograd recording, on the first two examples where every input
    tensor shares its first axis (the whole input otherwise), in the model's mode;
    hooks, buffers, ``requires_grad`` flags and the random number generators' states are
    restored afterwards.

    Args:
        model: any module.
        x: an input as for the model's forward (tensor, tuple or dict).

    Returns:
        :class:`ModelStructure`.

    Raises:
        Exception: whatever the model's forward raises.

    Examples:
        >>> layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        >>> s = probe_structure(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
        ...                     torch.randn(3, 5, 8))
        >>> s.owners, s.skip_kind("layers.0")
        ({'layers.0': 2, 'layers.1': 2}, 'inner')
    """
    frozen = [p for p in model.parameters() if not p.requires_grad]
    small = small_batch(x)
    try:
        for p in frozen:
            p.requires_grad_(True)
        try:
            calls, out = _record(model, _leaf_inputs(small if small is not None else x))
        except Exception:
            if small is None:
                raise
            calls, out = _record(model, _leaf_inputs(x))
        return _analyse(model, calls, out)
    finally:
        for p in frozen:
            p.requires_grad_(False)


def _analyse(model: nn.Module, calls: list[_Call], out: Any) -> ModelStructure:
    graph = _Graph({id(p) for p in model.parameters()})
    roots = [_node(t) for t in _tensors(out)]
    roots += [c.output[0] for c in calls if isinstance(c.output, tuple)]
    structure = ModelStructure()
    for c in calls:
        if c.name not in structure.order:
            structure.order.append(c.name)
    for n in graph.nodes(roots):
        if type(n).__name__ not in _JOINS or len(_inputs(n)) != 2:
            continue
        a, b = _inputs(n)
        fork = graph.fork(a, b)
        if fork is None:
            continue
        low, uses_param = graph.between(n, fork)
        owner = _owner(calls, n, fork, low) if uses_param else None
        if owner is not None:
            structure.owners[owner] = structure.owners.get(owner, 0) + 1
    for c in calls:
        if isinstance(c.output, tuple) and c.output[0] is not None \
                and _adds_input(c.output[0], c.inputs):
            structure.identity.add(c.name)
    structure.owners = {n: structure.owners[n] for n in structure.order if n in structure.owners}
    return structure
