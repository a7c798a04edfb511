"""Path sums on DAGs and grids against explicit path enumeration and closed forms."""

import itertools
import math

import numpy as np
import pytest

from signalprop import theory


def _grid_paths(shape, t):
    """Every monotone path from the corner, as (node, product of edge transitions)."""
    out = {}
    ndim = len(shape)
    for node in itertools.product(*[range(s) for s in shape]):
        steps = [a for a in range(ndim) for _ in range(node[a])]
        total = 0.0
        for order in set(itertools.permutations(steps)):
            pos, prod = [0] * ndim, 1.0
            for a in order:
                pos[a] += 1
                prod *= t[(a, *pos)]
            total += prod
        out[node] = total
    return out


@pytest.mark.parametrize("shape", [(3, 4), (1, 5), (2, 2, 3)])
def test_grid_gain_is_the_enumerated_path_sum(shape):
    rng = np.random.default_rng(0)
    t = rng.uniform(-1.0, 1.5, size=(len(shape), *shape))
    gain = theory.dag_gain(shape, t)
    for node, total in _grid_paths(shape, t).items():
        assert gain[node] == pytest.approx(total, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("t", [0.5, 0.6, 1.0])
def test_corner_gain_is_binomial(t):
    n = 32  # 32 steps along each axis: a 33 x 33 node grid
    g = theory.dag_gain((n + 1, n + 1), t)
    assert g[n, n] == pytest.approx(math.comb(2 * n, n) * t ** (2 * n), rel=1e-12)
    assert theory.binomial_corner_gain(n, t) == pytest.approx(g[n, n], rel=1e-12)


def test_paper_numbers_at_n_32():
    assert theory.binomial_corner_gain(32, 0.6) == pytest.approx(1.16e4, rel=0.01)
    assert theory.binomial_corner_gain(32, 1.0) == pytest.approx(1.83e18, rel=0.01)
    assert theory.binomial_corner_gain(32, 0.5) == pytest.approx(0.0993, rel=0.01)


def test_antidiagonal_sums_grow_at_the_growth_rate():
    td, tr = 0.3, 0.55
    g = theory.dag_gain((12, 12), (td, tr))
    for k in range(12):  # complete antidiagonals only
        diag = sum(g[i, k - i] for i in range(k + 1))
        assert diag == pytest.approx(theory.grid_growth_rate((td, tr)) ** k, rel=1e-12)
    assert theory.grid_growth_rate((0.5, -0.5)) == 1.0


def test_edge_list_gain_against_depth_first_enumeration():
    rng = np.random.default_rng(1)
    n = 9
    edges = [(u, v, float(rng.normal())) for u in range(n) for v in range(u + 1, n)
             if rng.random() < 0.4]
    children = {}
    for u, v, w in edges:
        children.setdefault(u, []).append((v, w))

    def paths(u, prod, acc):
        acc[u] += prod
        for v, w in children.get(u, []):
            paths(v, prod * w * 0.7, acc)

    acc = np.zeros(n)
    paths(0, 1.0, acc)
    gain = theory.dag_gain(edges, 0.7)
    np.testing.assert_allclose(gain[: n], acc[: gain.size], rtol=1e-12, atol=1e-14)


def _plstm_paths(shape, t, s, m, direct):
    """Enumerate node paths; a path (first step a, ..., last step b) contributes
    S_a * prod of the transitions at its inner nodes * M_b."""
    h, w = shape
    out = np.zeros(shape)
    out[0, 0] = direct
    for i, j in itertools.product(range(h), range(w)):
        if i + j == 0:
            continue
        for order in set(itertools.permutations("d" * i + "r" * j)):
            pos = [0, 0]
            prod = s[order[0]]
            for a, b in zip(order, order[1:]):  # in through a, out through b at pos + a
                pos[0 if a == "d" else 1] += 1
                incoming = "l" if a == "r" else "u"
                prod *= t[b + incoming][tuple(pos)]
            prod *= m["l" if order[-1] == "r" else "u"]
            out[i, j] += prod
    return out


def test_plstm_gain_is_the_enumerated_line_graph_path_sum():
    rng = np.random.default_rng(2)
    shape = (3, 4)
    t = {k: rng.uniform(-1, 1, size=shape) for k in theory.PLSTM_TRANSITIONS}
    s, m = {"r": 0.7, "d": -1.3}, {"l": 0.4, "u": 1.1}
    got = theory.plstm_gain(shape, t, source=(s["r"], s["d"]), mark=(m["l"], m["u"]),
                            direct=0.3)
    np.testing.assert_allclose(got, _plstm_paths(shape, t, s, m, 0.3), rtol=1e-12)


def test_plstm_gain_closed_form_and_dropped_transition():
    g = theory.plstm_gain((6, 6), {k: 0.6 for k in theory.PLSTM_TRANSITIONS})
    for i, j in itertools.product(range(6), range(6)):
        if i + j:
            assert g[i, j] == pytest.approx(math.comb(i + j, i) * 0.6 ** (i + j - 1))
    # D-mode structure (no right -> down turn): at most one path into every edge state
    edges, _ = theory.plstm_line_graph((5, 5), {"rl": 1.0, "ru": 1.0, "du": 1.0},
                                       mark=(0.0, 0.0), direct=0.0)
    assert theory.dag_gain(edges).max() == 1.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="positive sizes"):
        theory.dag_gain((0, 3))
    with pytest.raises(ValueError, match="transition must be"):
        theory.dag_gain((2, 3), np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="u < v"):
        theory.dag_gain([(1, 0)])
    with pytest.raises(ValueError, match="unknown transition"):
        theory.plstm_line_graph((2, 2), {"lr": 1.0})
    with pytest.raises(ValueError, match="finite"):
        theory.grid_growth_rate(float("nan"))
