"""Which modules of a model are "blocks" for signal-propagation measurements.

Rule, in order (the first that applies wins; the chosen rule is reported):

1. The model defines ``signal_blocks()`` returning ``[(name, module), ...]`` (signalprop's
   own models do: the stem, then every residual block).
2. The model contains subclasses of :class:`signalprop.nn.ResidualBlock`: the outermost
   ones, in registration order.
3. The trunk containers: the outermost ``nn.Sequential`` / ``nn.ModuleList`` /
   ``nn.ModuleDict`` modules with at least two children (nested containers are flattened
   into their parent). If any of their children are composite modules (have submodules,
   like a ResNet block or a Transformer layer), those are the blocks; otherwise (a plain
   ``Sequential`` MLP) every child is.
4. Otherwise the root's direct children, or the root itself if it has none.

With an input (``discover_blocks(model, x)``, as every measurement calls it) rules 3 and 4
use what one forward shows (:func:`~signalprop.measure._structure.probe_structure`):
modules that never ran are dropped, and a block that holds no skip addition of its own but
contains modules that do (a ResNet *stage* of residual blocks) is replaced by its
children, recursively, so that the blocks are the residual units. Each block's ``skip``
says what was measured: ``"identity"`` (its output is its input plus the residual
branches, so ``y - x`` is their sum), ``"inner"`` (a skip addition inside, followed by a
normalization or activation, or a projection shortcut), ``"tapped"`` (a signalprop
:class:`~signalprop.nn.ResidualBlock`) or None (no skip addition).

Explicit ``blocks`` may be qualified names, module types, modules, or a predicate
``f(name, module) -> bool``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch.nn as nn

from signalprop._forward import ModelInput, module_names
from signalprop.measure._structure import ModelStructure, probe_structure
from signalprop.nn import ResidualBlock

BlockSpec = (
    str | Sequence[str] | type[nn.Module] | tuple[type[nn.Module], ...] | Sequence[nn.Module]
    | Callable[[str, nn.Module], bool] | None
)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Block:
    """A measurement point: the module's output is recorded after each call.

    Examples:
        >>> block = discover_blocks(nn.Sequential(nn.Linear(4, 4), nn.ReLU())).blocks[0]
        >>> block.name, block.module, block.tap
        ('0', Linear(in_features=4, out_features=4, bias=True), None)
    """

    name: str
    module: nn.Module
    tap: nn.Module | None  # the branch-end tap of a signalprop ResidualBlock
    skip: str | None = None  # "identity", "inner", "tapped" or None (see the module doc)

    @property
    def residual_by_difference(self) -> bool:
        """Take Var(output - input) as the residual-branch variance (when shapes agree).

        Only where the forward showed that the output is the input plus the residual
        branches (``skip == "identity"``): for a post-norm block, a post-activation block
        or a plain layer ``y - x`` is no branch.
        """
        return self.tap is None and self.skip == "identity"


@dataclass(frozen=True)
class BlockPlan:
    """The blocks a measurement records and the rule that chose them (reported in results).

    Examples:
        >>> plan = resolve_blocks(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Linear)
        >>> [b.name for b in plan.blocks], plan.rule
        (['0'], 'modules of type Linear')
    """

    blocks: list[Block]
    rule: str
    structure: ModelStructure | None = None  # what the probe forward showed, if it ran

    @property
    def skips(self) -> dict[str, str] | None:
        """Block name -> its measured skip kind, for blocks that add a skip connection;
        None when the model's structure was not measured."""
        if self.structure is None and not any(b.skip == "tapped" for b in self.blocks):
            return None
        return {b.name: b.skip for b in self.blocks if b.skip is not None}


def _make(model: nn.Module, pairs: Iterable[tuple[str, nn.Module]], rule: str,
          structure: ModelStructure | None = None) -> BlockPlan:
    blocks = []
    for name, m in pairs:
        tap = getattr(m, "branch_tap", None) if isinstance(m, ResidualBlock) else None
        if tap is not None:
            skip: str | None = "tapped"
        elif structure is not None:
            skip = structure.skip_kind(name or "<model>")
        else:
            skip = None
        blocks.append(Block(name or "<model>", m, tap, skip))
    if not blocks:
        raise ValueError(f"no blocks selected ({rule})")
    return BlockPlan(blocks, rule, structure)


def _outermost(
    model: nn.Module, match: Callable[[nn.Module], bool]
) -> list[tuple[str, nn.Module]]:
    """Modules satisfying ``match`` that are not inside another match, in registration order."""
    found: list[tuple[str, nn.Module]] = []

    def walk(m: nn.Module, name: str) -> None:
        if m is not model and match(m):
            found.append((name, m))
            return
        for child_name, child in m.named_children():
            walk(child, f"{name}.{child_name}" if name else child_name)

    walk(model, "")
    return found


def _trunks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Outermost containers with >= 2 children (a 1-child container is looked into)."""
    if isinstance(model, _CONTAINERS) and len(model) >= 2:
        return [("", model)]
    return _outermost(model, lambda m: isinstance(m, _CONTAINERS) and len(m) >= 2)


def _flatten(container: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for child_name, child in container.named_children():
        name = f"{prefix}.{child_name}" if prefix else child_name
        if isinstance(child, _CONTAINERS):
            out += _flatten(child, name)
        else:
            out.append((name, child))
    return out


def _units(name: str, module: nn.Module, s: ModelStructure) -> list[tuple[str, nn.Module]]:
    """``[(name, module)]``, or, when the module holds no skip addition of its own but
    contains modules that do, the residual units among its children (recursively)."""
    if s.owners.get(name) or not s.contains_skip(name):
        return [(name, module)]
    children = [(n, c) for n, c in _flatten(module, name) if n in s.order]
    composite = [(n, c) for n, c in children if any(True for _ in c.children())]
    found = [u for n, c in (composite or children) for u in _units(n, c, s)]
    return found or [(name, module)]


def _refine(pairs: list[tuple[str, nn.Module]], rule: str, s: ModelStructure | None
            ) -> tuple[list[tuple[str, nn.Module]], str]:
    """Drop blocks that never ran and open up containers of residual units."""
    if s is None:
        return pairs, rule
    ran = [(n, m) for n, m in pairs if n in s.order] or pairs
    out = [u for n, m in ran for u in _units(n, m, s)]
    if [n for n, _ in out] != [n for n, _ in ran]:
        rule += ", opened up to the residual blocks inside"
    return out, rule


def _probe(model: nn.Module, x: ModelInput | None) -> ModelStructure | None:
    if x is None:
        return None
    try:
        return probe_structure(model, x)
    except Exception:  # noqa: BLE001 -- the measurement's own forward reports it
        return None


def discover_blocks(model: nn.Module, example_input: ModelInput | None = None) -> BlockPlan:
    """Apply the module docstring's rule to ``model``; with an ``example_input`` (a batch),
    measure which modules ran and which add a skip connection (one forward).

    Examples:
        >>> plan = discover_blocks(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
        >>> [b.name for b in plan.blocks], plan.rule
        (['0', '1', '2'], "children of Sequential '<model>'")
        >>> class Residual(nn.Module):  # y = x + tanh(W x + b)
        ...     def __init__(self, width=4):
        ...         super().__init__()
        ...         self.branch = nn.Sequential(nn.Linear(width, width), nn.Tanh())
        ...     def forward(self, x):
        ...         return x + self.branch(x)
        >>> class Stage(nn.Module):  # a ResNet stage: residual blocks in a Sequential
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.blocks = nn.Sequential(Residual(), Residual())
        ...     def forward(self, x):
        ...         return self.blocks(x)
        >>> import torch
        >>> model = nn.Sequential(nn.Linear(4, 4), Stage(), Stage())
        >>> plan = discover_blocks(model, torch.randn(3, 4))
        >>> [(b.name, b.skip) for b in plan.blocks][:3]
        [('1.blocks.0', 'identity'), ('1.blocks.1', 'identity'), ('2.blocks.0', 'identity')]
        >>> plan.rule
        "composite children of Sequential '<model>', opened up to the residual blocks inside"
    """
    fn = getattr(model, "signal_blocks", None)
    if callable(fn):
        return _make(model, fn(), f"{type(model).__name__}.signal_blocks()")
    residual = _outermost(model, lambda m: isinstance(m, ResidualBlock))
    if residual:
        return _make(model, residual, "signalprop ResidualBlock subclasses")
    s = _probe(model, example_input)
    trunks = _trunks(model)
    if trunks:
        children = [pair for name, c in trunks for pair in _flatten(c, name)]
        if s is not None:
            children = [(n, m) for n, m in children if n in s.order] or children
        composite = [(n, m) for n, m in children if any(True for _ in m.children())]
        where = ", ".join(f"{type(c).__name__} '{n or '<model>'}'" for n, c in trunks)
        rule = f"composite children of {where}" if composite else f"children of {where}"
        return _make(model, *_refine(composite or children, rule, s), s)
    children = list(model.named_children())
    if children:
        return _make(model, *_refine(children, "children of the root module", s), s)
    return _make(model, [("", model)], "the root module (it has no submodules)", s)


def resolve_blocks(model: nn.Module, blocks: BlockSpec, x: ModelInput | None = None
                   ) -> BlockPlan:
    """Turn an explicit ``blocks`` argument (or None: discovery) into a plan; with an input
    ``x`` the blocks' skip connections are measured (see :func:`discover_blocks`).

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> [b.name for b in resolve_blocks(model, nn.Linear).blocks]
        ['0', '2']
        >>> resolve_blocks(model, ["2"]).rule
        'modules named by the caller'
    """
    if blocks is None:
        return discover_blocks(model, x)
    plan = _resolve_explicit(model, blocks)
    if any(b.tap is not None for b in plan.blocks):
        return plan
    return _make(model, [(b.name, b.module) for b in plan.blocks], plan.rule, _probe(model, x))


def _resolve_explicit(model: nn.Module, blocks: BlockSpec) -> BlockPlan:
    named = list(model.named_modules())
    if isinstance(blocks, str):
        blocks = [blocks]
    if isinstance(blocks, type) or (
        isinstance(blocks, tuple) and blocks and all(isinstance(b, type) for b in blocks)
    ):
        types = blocks
        pairs = [(n, m) for n, m in named if isinstance(m, types)]  # type: ignore[arg-type]
        return _make(model, pairs, f"modules of type {_type_names(types)}")
    if callable(blocks) and not isinstance(blocks, nn.Module):
        pred = blocks
        pairs = [(n, m) for n, m in named if pred(n, m)]
        return _make(model, pairs, "modules matching a predicate")
    if isinstance(blocks, Sequence):
        if all(isinstance(b, str) for b in blocks):
            by_name = dict(named)
            missing = [b for b in blocks if b not in by_name]
            if missing:
                close = difflib.get_close_matches(missing[0], list(by_name), n=3)
                hint = f"; close names: {', '.join(close)}" if close else ""
                raise ValueError(f"blocks: no submodule named {missing[0]!r}{hint}")
            return _make(model, [(b, by_name[b]) for b in blocks], "modules named by the caller")
        if all(isinstance(b, nn.Module) for b in blocks):
            ids = module_names(model)
            unknown = [b for b in blocks if id(b) not in ids]
            if unknown:
                kind = type(unknown[0]).__name__
                raise ValueError(f"blocks: a {kind} given is not a submodule of the model")
            return _make(model, [(ids[id(b)], b) for b in blocks], "modules given by the caller")
    raise ValueError(
        "blocks must be None, qualified names, module types, modules or a predicate "
        f"f(name, module) -> bool; got {type(blocks).__name__}"
    )


def _type_names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return ", ".join(t.__name__ for t in ts)
