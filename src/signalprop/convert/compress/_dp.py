"""The two-stage dynamic programme of Kim, Jeong, Lee & Song (ICML 2023), NumPy only.

Convolutions 1..L; position k sits between convolution k and k + 1 (0 before the first,
L after the last). A plan keeps a set A of activation positions and merges the
convolutions between consecutive merge boundaries S (A is a subset of S: a kept
activation ends a merge). Its cost is the sum of the segments' latencies T(i, j)
(convolutions i+1..j merged into one) plus the kept activations' latencies; its
importance is the sum, over the blocks between consecutive kept positions a < b, of
I(a, b): the (negative) effect of dropping every activation strictly between a and b.

Stage 1: T_opt(a, b) = min(T(a, b), min_k T_opt(a, k) + T(k, b)), the fastest way to
run the convolutions between two kept activations (any positions may split them).
Stage 2: over positions a < b where activations may be kept, with the budget in integer
units u (every latency rounded up, so a plan within the units is within the budget),
F_b(t) = max_a F_a(t - c(a, b)) + I(a, b), c(a, b) = T_opt(a, b) + act(b): the best
importance with cost at most t. Among plans of the best importance the cheapest is
returned. Positions whose activation cannot be dropped are always kept. Stage 1 costs
O(L^3) integer additions, stage 2 O(L^2) vector maxima of length u.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_NEG = -np.inf


@dataclass(frozen=True)
class DPSolution:
    """An optimal plan: kept activation positions, merge boundaries, its importance, its
    cost in units and in seconds (the sum of the latencies of its parts)."""

    kept: list[int]
    boundaries: list[int]
    importance: float
    cost_units: int
    seconds: float


def to_units(seconds: np.ndarray, unit: float) -> np.ndarray:
    """Latencies in integer units of ``unit`` seconds, rounded up (inf stays a sentinel)."""
    out = np.full(seconds.shape, np.iinfo(np.int64).max // 4, dtype=np.int64)
    finite = np.isfinite(seconds)
    out[finite] = np.ceil(seconds[finite] / unit - 1e-9).astype(np.int64)
    return out


def stage1(t_units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """T_opt(a, b) in units for all a < b, and the last split k (-1: one segment).

    Examples:
        >>> inf = 10 ** 9
        >>> t = np.array([[0, 3, 4], [0, 0, 3], [0, 0, 0]])   # merging 1..2 costs 4 < 3 + 3
        >>> topt, split = stage1(t)
        >>> int(topt[0, 2]), int(split[0, 2])
        (4, -1)
    """
    n = t_units.shape[0]
    topt = t_units.astype(np.int64).copy()
    split = np.full((n, n), -1, dtype=np.int64)
    for span in range(2, n):
        for a in range(n - span):
            b = a + span
            ks = np.arange(a + 1, b)
            cand = topt[a, ks] + t_units[ks, b]
            k = int(np.argmin(cand))
            if cand[k] < topt[a, b]:
                topt[a, b], split[a, b] = cand[k], ks[k]
    return topt, split


def _segments(split: np.ndarray, a: int, b: int) -> list[int]:
    """Inner boundaries of the fastest split of (a, b]."""
    k = int(split[a, b])
    return [] if k < 0 else _segments(split, a, k) + [k]


def stage2(topt: np.ndarray, act_units: np.ndarray, importance: np.ndarray, budget: int,
           positions: list[int], forced: set[int]) -> tuple[float, list[int], int] | None:
    """Best importance within ``budget`` units over kept sets of ``positions`` (0 and L
    included, ``forced`` always kept): (importance, kept positions, cost), or None."""
    last = positions[-1]
    f = {0: np.zeros(budget + 1)}
    arg: dict[int, np.ndarray] = {}
    for bi, b in enumerate(positions[1:], start=1):
        fb, ab = np.full(budget + 1, _NEG), np.full(budget + 1, -1, dtype=np.int64)
        for a in reversed(positions[:bi]):
            c = int(topt[a, b]) + (int(act_units[b]) if b != last else 0)
            if c <= budget:
                cand = np.full(budget + 1, _NEG)
                cand[c:] = f[a][:budget + 1 - c] + importance[a, b]
                better = cand > fb
                fb[better], ab[better] = cand[better], a
            if a in forced:
                break  # a block cannot skip a kept position
        f[b], arg[b] = fb, ab
    best = f[last][budget]
    if best == _NEG:
        return None
    tol = 1e-9 * (1.0 + abs(best))
    t = int(np.argmax(f[last] >= best - tol))  # the cheapest plan of the best importance
    kept, b = [], last
    while b != 0:
        a = int(arg[b][t])
        t -= int(topt[a, b]) + (int(act_units[b]) if b != last else 0)
        kept.append(a)
        b = a
    return float(best), sorted(kept)[1:], int(np.argmax(f[last] >= best - tol))


def solve(seg_seconds: np.ndarray, act_seconds: np.ndarray, importance: np.ndarray,
          budget: float, *, droppable: np.ndarray, forced: np.ndarray,
          resolution: int = 1000) -> DPSolution | None:
    """The optimal plan within ``budget`` seconds (None if no plan fits).

    Args:
        seg_seconds: (L+1, L+1) latency of convolutions i+1..j merged (inf: cannot merge).
        act_seconds: (L+1,) latency of the activation at each position (0: none).
        importance: (L+1, L+1) I(a, b) for a < b (see the module docstring).
        budget: seconds for the segments and the kept activations.
        droppable: (L+1,) positions whose activation may be dropped.
        forced: (L+1,) positions whose activation must be kept.
        resolution: the budget in integer units (latencies are rounded up to units).

    Examples:
        >>> inf = np.inf
        >>> T = np.array([[inf, 2, 3.], [inf, inf, 2], [inf, inf, inf]])
        >>> act, imp = np.array([0, 1.0, 0]), np.array([[0, 0, -0.5], [0, 0, 0], [0] * 3])
        >>> drop, forced = np.array([False, True, False]), np.zeros(3, bool)
        >>> solve(T, act, imp, 5.0, droppable=drop, forced=forced, resolution=5).kept
        [1]
        >>> s = solve(T, act, imp, 4.0, droppable=drop, forced=forced, resolution=4)
        >>> s.kept, s.boundaries, s.importance
        ([], [], -0.5)
    """
    n = seg_seconds.shape[0]
    if not (budget > 0 and math.isfinite(budget)):
        raise ValueError(f"budget must be a finite number of seconds > 0, got {budget!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be an integer >= 1, got {resolution!r}")
    unit = budget / resolution
    t_units = to_units(seg_seconds, unit)
    act_units = to_units(np.asarray(act_seconds, dtype=float), unit)
    topt, split = stage1(t_units)
    positions = [0] + [k for k in range(1, n - 1) if droppable[k] or forced[k]] + [n - 1]
    found = stage2(topt, act_units, importance, resolution, positions,
                   {k for k in range(n) if forced[k]})
    if found is None:
        return None
    best, kept, cost = found
    bounds, seconds = [], 0.0
    for a, b in zip([0] + kept, kept + [n - 1]):
        inner = _segments(split, a, b)
        bounds += inner + ([b] if b != n - 1 else [])
        for i, j in zip([a] + inner, inner + [b]):
            seconds += float(seg_seconds[i, j])
        seconds += float(act_seconds[b]) if b != n - 1 else 0.0
    return DPSolution(kept, sorted(bounds), best, cost, seconds)
