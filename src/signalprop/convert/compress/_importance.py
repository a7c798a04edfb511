"""Importance of dropping activations: I(a, b) = score(network with every droppable
activation strictly between positions a and b replaced by the identity) - score(network),
for a user's score (higher is better: minus a validation loss, an accuracy).

Kim et al. (ICML 2023) measure each block's importance as the accuracy after replacing
its activations and fine-tuning briefly, and take the sum over blocks as a surrogate of
the whole plan's accuracy. NOTE: here no fine-tuning is done per block (the score of
the network as it is), which costs one evaluation per block instead of a training run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch.nn as nn

from signalprop.convert._surgery import get_module, set_module
from signalprop.convert.compress._chain import Chain
from signalprop.results.compression import span

Score = Callable[[nn.Module], float]


def blocks(chain: Chain) -> list[tuple[int, int]]:
    """The pairs a < b of keepable positions (0, L and positions with activations) with
    no forced position strictly between them: the blocks a plan can have."""
    n = chain.length
    pos = [0] + [k for k in range(1, n) if chain.acts[k]] + [n]
    out = []
    for ia, a in enumerate(pos):
        for b in pos[ia + 1:]:
            out.append((a, b))
            if chain.forced(b):
                break
    return out


def _score(score: Score, model: nn.Module) -> float:
    value = float(score(model))
    if not math.isfinite(value):
        raise ValueError(f"importance: the score is {value} (it must be finite); check the "
                         "score function and the network it received")
    return value


def importance_table(model: nn.Module, chain: Chain,
                     importance: Score | Mapping[str, float]) -> dict[str, float]:
    """I(a, b) for every block of ``chain`` (see the module docstring); a mapping given
    instead of a score function must hold every block's "a:b"."""
    pairs = blocks(chain)
    if isinstance(importance, Mapping):
        missing = [span(a, b) for a, b in pairs if span(a, b) not in importance]
        if missing:
            raise ValueError(f"importance table lacks blocks {missing[:5]} (needs every "
                             f"'a:b' of {len(pairs)} blocks)")
        return {span(a, b): float(importance[span(a, b)]) for a, b in pairs}
    if not callable(importance):
        raise ValueError(f"importance must be a score function f(model) -> float or a "
                         f"mapping 'a:b' -> value, got {type(importance).__name__}")
    base = _score(importance, model)
    out = {}
    for a, b in pairs:
        names = [op.name for k in range(a + 1, b) if chain.droppable(k)
                 for op in chain.acts[k]]
        if not names:
            out[span(a, b)] = 0.0
            continue
        saved = [get_module(model, n) for n in names]
        for n in names:
            set_module(model, n, nn.Identity())
        try:
            out[span(a, b)] = _score(importance, model) - base
        finally:
            for n, m in zip(names, saved):
                set_module(model, n, m)
    return out
