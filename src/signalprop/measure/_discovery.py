"""Which modules of a model are "blocks" for signal-propagation measurements.

Rule, in order (the first that applies wins; the chosen rule is reported):

1. The model defines ``signal_blocks()`` returning ``[(name, module), ...]`` (signalprop's
   own models do: the stem, then every residual block).
2. The model contains subclasses of :class:`signalprop.nn.ResidualBlock`: the outermost
   ones, in registration order.
3. The trunk containers: the outermost ``nn.Sequential`` / ``nn.ModuleList`` modules with
   at least two children (nested containers are flattened into their parent). If any
   of their children are composite modules (have submodules, like a ResNet block or a
   Transformer layer), those are the blocks; otherwise (a plain ``Sequential`` MLP)
   every child is.
4. Otherwise the root's direct children, or the root itself if it has none.

Explicit ``blocks`` may be qualified names, module types, modules, or a predicate
``f(name, module) -> bool``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch.nn as nn

from signalprop._forward import module_names
from signalprop.nn import ResidualBlock

BlockSpec = (
    str | Sequence[str] | type[nn.Module] | tuple[type[nn.Module], ...] | Sequence[nn.Module]
    | Callable[[str, nn.Module], bool] | None
)
_CONTAINERS = (nn.Sequential, nn.ModuleList)


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

    @property
    def residual_by_difference(self) -> bool:
        """Take Var(output - input) as the residual-branch variance (when shapes agree).

        Only for composite foreign modules: a single layer (Linear, an activation) is not a
        residual block even when it keeps its input's shape.
        """
        return self.tap is None and any(True for _ in self.module.children())


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


def _make(model: nn.Module, pairs: Iterable[tuple[str, nn.Module]], rule: str) -> BlockPlan:
    blocks = []
    for name, m in pairs:
        tap = getattr(m, "branch_tap", None) if isinstance(m, ResidualBlock) else None
        blocks.append(Block(name or "<model>", m, tap))
    if not blocks:
        raise ValueError(f"no blocks selected ({rule})")
    return BlockPlan(blocks, rule)


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


def discover_blocks(model: nn.Module) -> BlockPlan:
    """Apply the module docstring's rule to ``model``.

    Examples:
        >>> plan = discover_blocks(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
        >>> [b.name for b in plan.blocks], plan.rule
        (['0', '1', '2'], "children of Sequential '<model>'")
    """
    fn = getattr(model, "signal_blocks", None)
    if callable(fn):
        return _make(model, fn(), f"{type(model).__name__}.signal_blocks()")
    residual = _outermost(model, lambda m: isinstance(m, ResidualBlock))
    if residual:
        return _make(model, residual, "signalprop ResidualBlock subclasses")
    trunks = _trunks(model)
    if trunks:
        children = [pair for name, c in trunks for pair in _flatten(c, name)]
        composite = [(n, m) for n, m in children if any(True for _ in m.children())]
        where = ", ".join(f"{type(c).__name__} '{n or '<model>'}'" for n, c in trunks)
        if composite:
            return _make(model, composite, f"composite children of {where}")
        return _make(model, children, f"children of {where}")
    children = list(model.named_children())
    if children:
        return _make(model, children, "children of the root module")
    return _make(model, [("", model)], "the root module (it has no submodules)")


def resolve_blocks(model: nn.Module, blocks: BlockSpec) -> BlockPlan:
    """Turn an explicit ``blocks`` argument (or None: discovery) into a plan.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> [b.name for b in resolve_blocks(model, nn.Linear).blocks]
        ['0', '2']
        >>> resolve_blocks(model, ["2"]).rule
        'modules named by the caller'
    """
    if blocks is None:
        return discover_blocks(model)
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
