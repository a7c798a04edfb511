"""Exact gains of linear recurrences on directed acyclic graphs and grids: sums over paths.

A linear recurrence on a DAG multiplies a signal by the transition ``w`` of every edge it
crosses and adds up what arrives by different paths, so the gain from the source to a node
is the sum over all source-to-node paths of the product of their transitions. On an
``n x n`` grid (edges right and down, the same transition ``t`` on every edge) there are
``C(2n, n)`` paths of ``2n`` steps from corner ``(0, 0)`` to corner ``(n, n)``:

    gain(n, n) = C(2n, n) t^(2n) ~ (2t)^(2n) / sqrt(pi n),

so a transition that is stable on a sequence (``|t| < 1``) explodes on a grid once
``t > 1/2`` (n = 32: ``t = 0.6`` gives 1.16e4, ``t = 1`` gives 1.8e18, ``t = 1/2`` gives
0.099). Summed over the nodes at Manhattan distance ``k`` the gain is exactly
``(t_1 + ... + t_d)^k`` (multinomial theorem), so the grid is stable iff
``|t_1| + ... + |t_d| <= 1`` (:func:`grid_growth_rate`): the line ``|t_down| + |t_right| = 1``
is the 2-D analogue of ``chi = 1``.

pLSTM (Poeppel et al., 2025) keeps its cell states on the *edges* of the DAG, with a Source
gate (node input -> outgoing edge), a Transition gate (incoming edge -> outgoing edge) and a
Mark gate (incoming edge -> node output); the paths then live on the line graph.
:func:`plstm_gain` builds that line graph for a 2-D grid (the layout of
:class:`signalprop.nn.LinearRNN2d`) and sums its paths with :func:`dag_gain`. Its two stable
modes: P-mode bounds, for every incoming edge, the summed absolute transitions to the
node's outgoing edges by one (the summed absolute gain across every cut of the grid then
never grows); D-mode drops transitions until the line graph is a multitree (one path
between any two edges), each remaining transition bounded by one in absolute value.

Examples:
    >>> from math import comb
    >>> g = dag_gain((4, 4), 0.5)
    >>> float(g[3, 3]) == comb(6, 3) * 0.5 ** 6
    True
    >>> grid_growth_rate((0.6, 0.6))
    1.2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The transitions of a pLSTM-style 2-D grid, "<out><in>": r/d = outgoing right/down edge,
#: l/u = incoming edge from the left/from above.
PLSTM_TRANSITIONS = ("rl", "ru", "dl", "du")


def _is_shape(graph: Any) -> bool:
    return (isinstance(graph, tuple) and len(graph) >= 1
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in graph))


def dag_gain(graph: tuple[int, ...] | Sequence[Sequence[float]], transition: Any = 1.0
             ) -> np.ndarray:
    """The exact gain from the source to every node: the sum over paths of the product of
    the transitions along them.

    Args:
        graph: a grid shape such as ``(H, W)`` (any number of axes; edges go one step
            forward along each axis; the source is the corner ``(0, ..., 0)``), or a DAG
            as a sequence of edges ``(u, v)`` or ``(u, v, weight)`` on integer nodes
            numbered in topological order (``u < v``; the source is node 0).
        transition: for a grid, one number (every edge), one number per axis (the edges
            along axis ``a`` get ``transition[a]``), or an array of shape
            ``(ndim, *shape)`` (``transition[a][idx]``: the edge entering node ``idx``
            along axis ``a``). For a DAG, one number multiplying every edge's weight.

    Returns:
        float64 array of the grid's shape, or ``(num_nodes,)`` for a DAG (unreachable
        nodes have gain 0; the source has gain 1).

    Raises:
        ValueError: a shape that is not positive, a transition of the wrong shape, an edge
            that is not ``(u, v[, w])`` with ``0 <= u < v``.

    Examples:
        >>> dag_gain((2, 3)).tolist()          # path counts C(i + j, i)
        [[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]
        >>> dag_gain([(0, 1, 0.5), (0, 2), (1, 3), (2, 3, 2.0)]).tolist()
        [1.0, 0.5, 1.0, 2.5]
    """
    if _is_shape(graph):
        return _grid_gain(tuple(int(s) for s in graph), transition)
    return _edge_gain(graph, transition)


def _grid_transitions(shape: tuple[int, ...], transition: Any) -> np.ndarray:
    t = np.asarray(transition, dtype=np.float64)
    ndim = len(shape)
    if t.ndim == 0:
        return np.full((ndim, *shape), float(t))
    if t.shape == (ndim,):
        return np.broadcast_to(t.reshape(ndim, *([1] * ndim)), (ndim, *shape)).copy()
    if t.shape == (ndim, *shape):
        return t
    raise ValueError(f"transition must be a number, {ndim} numbers (one per axis) or an "
                     f"array of shape {(ndim, *shape)}; got shape {t.shape}")


def _grid_gain(shape: tuple[int, ...], transition: Any) -> np.ndarray:
    if any(s < 1 for s in shape):
        raise ValueError(f"grid shape must hold positive sizes, got {shape}")
    t = _grid_transitions(shape, transition)
    gain = np.zeros(shape)
    gain[(0,) * len(shape)] = 1.0
    # Visit the nodes in order of their distance from the corner, one antidiagonal
    # hyperplane at a time: every predecessor of a node lies on the previous one.
    index = np.indices(shape).reshape(len(shape), -1)
    dist = index.sum(axis=0)
    for k in range(1, int(dist.max()) + 1):
        nodes = index[:, dist == k]
        total = np.zeros(nodes.shape[1])
        for a in range(len(shape)):
            ok = nodes[a] > 0
            prev = nodes[:, ok].copy()
            prev[a] -= 1
            total[ok] += t[(a, *nodes[:, ok])] * gain[tuple(prev)]
        gain[tuple(nodes)] = total
    return gain


def _edge_gain(edges: Sequence[Sequence[float]], transition: Any) -> np.ndarray:
    t = float(transition)
    rows = []
    for e in edges:
        if len(e) not in (2, 3):
            raise ValueError(f"an edge must be (u, v) or (u, v, weight), got {tuple(e)!r}")
        u, v = e[0], e[1]
        if not (float(u).is_integer() and float(v).is_integer() and 0 <= u < v):
            raise ValueError(f"edges must join integer nodes u < v (number the nodes in "
                             f"topological order, source 0), got {tuple(e)!r}")
        rows.append((int(u), int(v), float(e[2]) if len(e) == 3 else 1.0))
    n = max((v for _, v, _ in rows), default=0) + 1
    gain = np.zeros(n)
    gain[0] = 1.0
    for u, v, w in sorted(rows, key=lambda r: r[1]):  # every u < v is final before v
        gain[v] += w * t * gain[u]
    return gain


def grid_growth_rate(transition: float | Sequence[float]) -> float:
    """The factor by which the summed gain over nodes at distance ``k`` grows per step.

    With transition ``t_a`` on every edge along axis ``a``, the gains of the nodes at
    Manhattan distance ``k`` from the corner add up to ``(sum_a t_a)^k``; with signs, the
    summed absolute gain is at most ``(sum_a |t_a|)^k``. The recurrence is stable on an
    unbounded grid iff this rate is ``<= 1``: ``|t_down| + |t_right| = 1`` is the 2-D
    analogue of ``chi = 1`` (a 1-D chain needs only ``|t| <= 1``).

    Args:
        transition: one number per axis (a single number means one axis, a sequence).

    Returns:
        ``sum_a |t_a|``.

    Examples:
        >>> grid_growth_rate((0.5, 0.5)), grid_growth_rate(0.9)
        (1.0, 0.9)
    """
    t = np.atleast_1d(np.asarray(transition, dtype=np.float64))
    if t.ndim != 1 or not np.all(np.isfinite(t)):
        raise ValueError(f"transition must be finite numbers, one per axis, got {transition!r}")
    return float(np.abs(t).sum())


def _field(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(shape, float(arr))
    if arr.shape != shape:
        raise ValueError(f"{name} must be a number or an array of shape {shape}, "
                         f"got shape {arr.shape}")
    return arr


def plstm_line_graph(
    shape: tuple[int, int],
    transitions: Mapping[str, Any],
    source: tuple[Any, Any] = (1.0, 1.0),
    mark: tuple[Any, Any] = (1.0, 1.0),
    direct: Any = 1.0,
) -> tuple[list[tuple[int, int, float]], np.ndarray]:
    """The line graph of a pLSTM-style 2-D grid seen from the input at node ``(0, 0)``.

    Cell states live on edges: ``R[i, j]`` on the edge leaving ``(i, j)`` to the right,
    ``D[i, j]`` on the edge leaving it downwards. With ``l``/``u`` the edges entering
    ``(i, j)`` from the left (``R[i, j-1]``) and from above (``D[i-1, j]``)::

        R[i, j] = T_rl R[i, j-1] + T_ru D[i-1, j] + S_r x[i, j]
        D[i, j] = T_dl R[i, j-1] + T_du D[i-1, j] + S_d x[i, j]
        y[i, j] = M_l R[i, j-1] + M_u D[i-1, j] + direct x[i, j]

    Node 0 is the input ``x[0, 0]``; then, node by node in row-major order, ``R``, ``D``
    and ``y`` (a topological numbering, as :func:`dag_gain` needs).

    Args:
        shape: ``(H, W)``.
        transitions: ``{"rl", "ru", "dl", "du"} -> number or (H, W) array``; a missing key
            is a transition of zero (D-mode drops one).
        source: ``(S_r, S_d)``, numbers or (H, W) arrays.
        mark: ``(M_l, M_u)``, numbers or (H, W) arrays.
        direct: the node's own input to its output.

    Returns:
        ``(edges, outputs)``: the weighted edge list and the (H, W) array of the output
        nodes' numbers.

    Examples:
        >>> edges, out = plstm_line_graph((1, 2), {"rl": 0.5})
        >>> dag_gain(edges)[out].tolist()     # y[0, 1] = M_l T_rl^0 S_r
        [[1.0, 1.0]]
    """
    h, w = shape
    unknown = set(transitions) - set(PLSTM_TRANSITIONS)
    if unknown:
        raise ValueError(f"unknown transition(s) {sorted(unknown)}; valid: {PLSTM_TRANSITIONS}")
    t = {k: _field(transitions.get(k, 0.0), shape, f"transitions[{k!r}]")
         for k in PLSTM_TRANSITIONS}
    s_r, s_d = (_field(v, shape, "source") for v in source)
    m_l, m_u = (_field(v, shape, "mark") for v in mark)
    d = _field(direct, shape, "direct")
    node = 1 + 3 * np.arange(h * w).reshape(h, w)  # R = node, D = node + 1, y = node + 2
    edges = [(0, int(node[0, 0]), s_r[0, 0]), (0, int(node[0, 0]) + 1, s_d[0, 0]),
             (0, int(node[0, 0]) + 2, d[0, 0])]
    for i in range(h):
        for j in range(w):
            r, dn, y = int(node[i, j]), int(node[i, j]) + 1, int(node[i, j]) + 2
            if j > 0:  # the edge from the left, R[i, j-1]
                left = int(node[i, j - 1])
                edges += [(left, r, t["rl"][i, j]), (left, dn, t["dl"][i, j]),
                          (left, y, m_l[i, j])]
            if i > 0:  # the edge from above, D[i-1, j]
                up = int(node[i - 1, j]) + 1
                edges += [(up, r, t["ru"][i, j]), (up, dn, t["du"][i, j]), (up, y, m_u[i, j])]
    return [(u, v, float(wt)) for u, v, wt in edges if wt != 0.0], node + 2


def plstm_gain(
    shape: tuple[int, int],
    transitions: Mapping[str, Any],
    source: tuple[Any, Any] = (1.0, 1.0),
    mark: tuple[Any, Any] = (1.0, 1.0),
    direct: Any = 1.0,
) -> np.ndarray:
    """d y[i, j] / d x[0, 0] of the pLSTM-style grid recurrence (see
    :func:`plstm_line_graph`), as the sum over the paths of its line graph.

    With every transition ``t`` and unit source and mark, ``y[i, j]`` (``i + j >= 1``) is
    reached by ``C(i + j, i)`` node paths with ``i + j - 1`` transitions each, so the gain
    is ``C(i + j, i) t^(i + j - 1)`` (the first step leaves by the source edge of its
    direction, the last arrives through the mark of its direction).

    Args:
        shape: ``(H, W)``.
        transitions: as :func:`plstm_line_graph`.
        source: ``(S_r, S_d)``.
        mark: ``(M_l, M_u)``.
        direct: the node's own input to its output.

    Returns:
        float64 (H, W) array.

    Examples:
        >>> g = plstm_gain((3, 3), {k: 0.5 for k in PLSTM_TRANSITIONS})
        >>> float(g[2, 2]) == 6 * 0.5 ** 3
        True
    """
    edges, out = plstm_line_graph(shape, transitions, source, mark, direct)
    gain = dag_gain(edges)
    full = np.zeros(int(out.max()) + 1)
    full[: gain.size] = gain
    return full[out]


def binomial_corner_gain(n: int, t: float) -> float:
    """``C(2n, n) t^(2n)``: the corner-to-corner gain of an ``(n + 1) x (n + 1)`` node grid
    (``n`` steps along each axis) with transition ``t`` on every edge.

    Examples:
        >>> round(binomial_corner_gain(32, 0.6), -2)
        11600.0
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return float(math.comb(2 * n, n) * float(t) ** (2 * n))
