"""The SR / R / BC rounding chains: transition rows against simulation of the update,
stationary laws against matrix powers and closed forms, and the paper's lr behaviour."""

import math

import numpy as np
import pytest

from signalprop.theory import DoubleWell, rounding_chain, stationary_distribution
from signalprop.theory.quantized import rounding_transitions

WELL = DoubleWell(0.3)
GRID = np.linspace(-2.0, 2.0, 17)


def _sr_round(x, y, rng):
    d = y[1] - y[0]
    u = np.clip((x - y[0]) / d, 0, y.size - 1)
    lo = np.floor(u)
    return (lo + (rng.random(u.shape) < u - lo)).astype(int)


def _check_row(row, samples, n):
    """Empirical frequencies within 4 binomial standard errors (+1e-3) of the row."""
    freq = np.bincount(samples, minlength=n) / samples.size
    se = np.sqrt(row * (1 - row) / samples.size)
    assert np.all(np.abs(freq - row) <= 4 * se + 1e-3), (freq, row)


@pytest.mark.parametrize("i", [0, 3, 8, 16])
def test_sr_and_r_rows_match_simulated_updates(i):
    rng = np.random.default_rng(i)
    lr, noise = 0.05, 2.0
    w = GRID[i]
    x = w - lr * (WELL.grad(w) + noise * rng.standard_normal(200_000))
    _, p_sr = rounding_transitions(WELL.grad, GRID, lr=lr, noise=noise, scheme="sr")
    _check_row(p_sr.toarray()[i], _sr_round(x, GRID, rng), GRID.size)
    _, p_r = rounding_transitions(WELL.grad, GRID, lr=lr, noise=noise, scheme="r")
    nearest = np.clip(np.round((x - GRID[0]) / 0.25), 0, GRID.size - 1).astype(int)
    _check_row(p_r.toarray()[i], nearest, GRID.size)


def test_bc_rows_match_the_buffer_update():
    rng = np.random.default_rng(3)
    lr, noise = 0.05, 2.0
    fine, p = rounding_transitions(WELL.grad, GRID, lr=lr, noise=noise, scheme="bc")
    k = fine.size // GRID.size
    for i in (5, fine.size // 2, fine.size - 3):
        at = GRID[i // k]  # the grid point the model uses
        x = fine[i] - lr * (WELL.grad(at) + noise * rng.standard_normal(100_000))
        _check_row(p.toarray()[i], _sr_round(x, fine, rng), fine.size)


def test_rows_are_distributions():
    for scheme in ("sr", "r", "bc"):
        _, p = rounding_transitions(WELL.grad, GRID, lr=0.02, noise=1.0, scheme=scheme)
        assert p.min() >= 0
        np.testing.assert_allclose(np.asarray(p.sum(axis=1)).ravel(), 1.0, atol=1e-12)


@pytest.mark.parametrize("scheme", ["sr", "r"])
def test_stationary_matches_the_matrix_power(scheme):
    _, p = rounding_transitions(WELL.grad, GRID, lr=0.05, noise=2.0, scheme=scheme)
    power = np.linalg.matrix_power(p.toarray(), 2 ** 30)  # R mixes slowly
    pi = rounding_chain(WELL.grad, GRID, lr=0.05, noise=2.0, scheme=scheme).stationary
    np.testing.assert_allclose(power, np.tile(pi, (GRID.size, 1)), atol=1e-10)


def test_gth_on_birth_death_chains_with_closed_forms():
    # detailed balance: pi_{i+1} / pi_i = up_i / down_{i+1}, including ratios far below
    # machine precision (a linear solve would return noise there)
    rng = np.random.default_rng(0)
    for scale in (1.0, 1e-30):
        n = 40
        up = rng.uniform(0.1, 0.4, n) * np.where(np.arange(n) == 20, scale, 1.0)
        down = rng.uniform(0.1, 0.4, n)
        p = np.zeros((n, n))
        for i in range(n):
            if i + 1 < n:
                p[i, i + 1] = up[i]
            if i > 0:
                p[i, i - 1] = down[i]
            p[i, i] = 1 - p[i].sum()
        log_pi = np.concatenate(([0.0], np.cumsum(np.log(up[:-1]) - np.log(down[1:]))))
        exact = np.exp(log_pi - log_pi.max())
        exact /= exact.sum()
        got = stationary_distribution(p)
        mask = exact > 1e-300
        np.testing.assert_allclose(got[mask], exact[mask], rtol=1e-9)


def test_gth_on_dense_random_chains():
    rng = np.random.default_rng(1)
    p = rng.random((12, 12))
    p /= p.sum(axis=1, keepdims=True)
    pi = stationary_distribution(p)
    np.testing.assert_allclose(pi @ p, pi, atol=1e-14)
    assert pi.sum() == pytest.approx(1.0)


def test_sr_law_does_not_depend_on_small_learning_rates():
    masses = [rounding_chain(WELL.grad, GRID, lr=lr, noise=2.0).stationary
              for lr in (0.02, 0.01, 0.005, 0.0025)]
    for m in masses[1:]:
        np.testing.assert_allclose(m, masses[0], atol=1e-4)
    assert max(masses[-1]) < 0.6  # no concentration


def test_bc_concentrates_on_the_global_minimum_as_lr_shrinks():
    mass = [rounding_chain(WELL.grad, GRID, lr=lr, noise=2.0, scheme="bc").mass_near(-1.0)
            for lr in (0.08, 0.04, 0.02, 0.01)]
    assert mass == sorted(mass) and mass[-1] > 0.85
    # the limit: the buffer sits at the boundary -1.125 of the cells of -1.25 and -1, each
    # side holding mass proportional to 1 / |f'(cell point)|
    g_left, g_right = abs(WELL.grad(-1.25)), abs(WELL.grad(-1.0))
    assert mass[-1] == pytest.approx(g_left / (g_left + g_right), abs=0.01)


def test_bc_converges_with_resolution():
    a = rounding_chain(WELL.grad, GRID, lr=0.04, noise=2.0, scheme="bc", resolution=4)
    b = rounding_chain(WELL.grad, GRID, lr=0.04, noise=2.0, scheme="bc", resolution=8)
    np.testing.assert_allclose(a.stationary, b.stationary, atol=0.01)


def test_bc_matches_a_simulated_float_buffer():
    """10000 independent float buffers (no buffer grid) started in the deep well; the
    right well holds 5e-4 of the stationary mass, so 1500 steps mix the left one."""
    rng = np.random.default_rng(7)
    lr, noise = 0.04, 2.0
    b = np.full(10_000, -1.0)
    for _ in range(1500):
        at = GRID[np.clip(np.round((b - GRID[0]) / 0.25), 0, 16).astype(int)]
        b = np.clip(b - lr * (WELL.grad(at) + noise * rng.standard_normal(b.size)),
                    GRID[0] - 0.125, GRID[-1] + 0.125)
    frac = np.mean(np.abs(b - (-1.0)) <= 0.125)
    pred = rounding_chain(WELL.grad, GRID, lr=lr, noise=noise, scheme="bc",
                          resolution=8).mass_near(-1.0)
    se = math.sqrt(pred * (1 - pred) / b.size)
    assert abs(frac - pred) < 4 * se + 0.005


def test_double_well_gradient():
    w = np.linspace(-2, 2, 9)
    h = 1e-6
    np.testing.assert_allclose(WELL.grad(w), (WELL.value(w + h) - WELL.value(w - h)) / (2 * h),
                               atol=1e-6)


def test_result_round_trip_and_csv():
    r = rounding_chain(WELL.grad, GRID, lr=0.02, noise=2.0)
    back = type(r).from_json(r.to_json())
    assert back.stationary == r.stationary and back.mode == -1.0
    assert r.to_csv().splitlines()[0] == "label,scheme,lr,noise,w,probability"


@pytest.mark.parametrize("kwargs, match", [
    ({"grid": [0.0, 1.0, 3.0]}, "uniformly spaced"),
    ({"grid": [1.0]}, "at least 2"),
    ({"scheme": "sgd"}, "scheme must be one of"),
    ({"lr": 0.0}, "lr must be > 0"),
    ({"noise": -1.0}, "noise must be > 0"),
    ({"scheme": "bc", "lr": 1e-4, "max_states": 1000}, "needs .* states"),
    ({"scheme": "r", "lr": 1e-4}, "reducible"),
])
def test_bad_input(kwargs, match):
    args = {"grid": GRID, "lr": 0.02, "noise": 2.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        rounding_chain(WELL.grad, args.pop("grid"), **args)
