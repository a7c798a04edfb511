"""Exhaustive search over every depth-compression plan, the independent check of the
dynamic programme: every set S of merge boundaries, every set A of kept activations
inside it (forced ones included), within the budget; the best summed importance, and
among those the least cost."""

from __future__ import annotations

import itertools
import random

import numpy as np


def random_tables(rng: random.Random, n: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer latencies (one unit a second), positions and importances for ``n`` convs:
    (segment latencies (inf: cannot merge), activation latencies, importances,
    droppable, forced).

    Examples:
        >>> seg, act, imp, drop, forced = random_tables(random.Random(0), 3)
        >>> seg.shape, bool(np.isfinite(seg[0, 1]))
        ((4, 4), True)
    """
    seg = np.full((n + 1, n + 1), np.inf)
    for i in range(n):
        for j in range(i + 1, n + 1):
            if j == i + 1 or rng.random() < 0.7:
                seg[i, j] = rng.randint(1, 12) if j == i + 1 else rng.randint(1, 6 * (j - i))
    kind = ["none"] + [rng.choice(["none", "drop", "drop", "forced"]) for _ in range(1, n)] \
        + ["none"]
    act = np.array([rng.randint(0, 4) if k != "none" else 0 for k in kind], dtype=float)
    imp = np.array([[rng.gauss(-1, 1) for _ in range(n + 1)] for _ in range(n + 1)])
    return seg, act, imp, np.array([k == "drop" for k in kind]), \
        np.array([k == "forced" for k in kind])


def brute_force(seg: np.ndarray, act: np.ndarray, imp: np.ndarray, drop: np.ndarray,
                forced: np.ndarray, budget: float) -> tuple[float, float] | None:
    """(best importance, least cost among plans of the best importance), or None.

    Examples:
        >>> inf = np.inf
        >>> seg = np.array([[inf, 2, 3.], [inf, inf, 2], [inf, inf, inf]])
        >>> act, imp = np.array([0, 1.0, 0]), np.array([[0, 0, -0.5], [0, 0, 0], [0] * 3])
        >>> drop, forced = np.array([False, True, False]), np.zeros(3, bool)
        >>> brute_force(seg, act, imp, drop, forced, 5.0), brute_force(seg, act, imp, drop,
        ...                                                              forced, 4.0)
        ((0.0, 5.0), (-0.5, 3.0))
    """
    n = seg.shape[0] - 1
    keepable = {k for k in range(1, n) if drop[k] or forced[k]}
    must = [k for k in range(n + 1) if forced[k]]
    best = None
    for r in range(n):
        for s in itertools.combinations(range(1, n), r):
            if any(k not in s for k in must):
                continue
            cuts = [0, *s, n]
            base = float(sum(seg[i, j] for i, j in zip(cuts[:-1], cuts[1:])))
            if not np.isfinite(base):
                continue
            options = [k for k in s if k in keepable and k not in must]
            for q in range(len(options) + 1):
                for a in itertools.combinations(options, q):
                    kept = sorted([*a, *must])
                    cost = base + float(sum(act[k] for k in kept))
                    if cost > budget:
                        continue
                    ends = [0, *kept, n]
                    value = float(sum(imp[x, y] for x, y in zip(ends[:-1], ends[1:])))
                    key = (round(value, 9), -cost)
                    if best is None or key > best[0]:
                        best = (key, value, cost)
    return None if best is None else (best[1], best[2])
