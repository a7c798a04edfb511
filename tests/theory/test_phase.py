"""The vectorised phase diagram against the pointwise solvers, and its plot."""

import math
import time

import numpy as np
import pytest

from signalprop.theory import critical_point, mean_field, phase_diagram

SW = np.linspace(0.5, 4.0, 15)
SB = np.array([0.0, 0.02, 0.1, 0.3])


@pytest.mark.parametrize("name", ["tanh", "erf", "selu", "gelu", "softplus", "relu6", "relu"])
def test_phase_diagram_matches_mean_field_pointwise(name):
    pd = phase_diagram(name, SW, SB)
    assert pd.chi_1.shape == pd.xi_c.shape == pd.q_star.shape == (SB.size, SW.size)
    rng = np.random.default_rng(0)
    for i, j in zip(rng.integers(0, SB.size, 6), rng.integers(0, SW.size, 6), strict=True):
        mf = mean_field(name, SW[j], SB[i])
        if math.isinf(mf.q_star):
            assert math.isinf(pd.q_star[i, j])
        else:
            assert pd.q_star[i, j] == pytest.approx(mf.q_star, rel=1e-8, abs=1e-14)
        assert pd.chi_1[i, j] == pytest.approx(mf.chi_1, rel=1e-8)
        # The Mehler series converges slowest as c* -> 1 (close to the boundary).
        near = mf.c_star >= 0.9
        assert pd.c_star[i, j] == pytest.approx(mf.c_star, abs=1e-4 if near else 1e-6)
        if math.isinf(mf.xi_c):
            assert math.isinf(pd.xi_c[i, j])
        else:
            assert pd.xi_c[i, j] == pytest.approx(mf.xi_c, rel=1e-3 if near else 1e-6)


def test_chaotic_points_deep_in_the_phase_are_accurate():
    sw, sb = np.array([2.5, 3.5]), np.array([0.05, 0.2])
    for name in ("tanh", "selu", "mish"):
        pd = phase_diagram(name, sw, sb)
        for i in range(2):
            for j in range(2):
                mf = mean_field(name, sw[j], sb[i])
                assert mf.phase == "chaotic"
                assert pd.xi_c[i, j] == pytest.approx(mf.xi_c, rel=1e-5)
                assert pd.c_star[i, j] == pytest.approx(mf.c_star, abs=1e-7)


def test_ordered_phase_uses_chi_1_and_the_boundary_is_found():
    pd = phase_diagram("tanh", np.linspace(1.0, 3.0, 201), [0.05])
    ordered = pd.chi_1[0] < 1
    assert np.allclose(pd.xi_c[0, ordered], -1 / np.log(pd.chi_1[0, ordered]))
    assert pd.critical_sigma_w2[0] == pytest.approx(critical_point("tanh", 0.05).sigma_w2,
                                                    abs=1e-3)


def test_100x100_diagram_is_fast():
    # Target <= 1 s on 2 cores (benchmarks/bench_theory.py prints the actual time); the
    # bound here is loose so a busy CI machine does not fail it.
    sw, sb = np.linspace(0.5, 4, 100), np.linspace(0, 0.5, 100)
    phase_diagram("tanh", sw[:5], sb[:5])  # warm caches
    t = time.perf_counter()
    pd = phase_diagram("tanh", sw, sb)
    assert time.perf_counter() - t < 4.0
    assert np.isfinite(pd.chi_1).all() and not np.isnan(pd.xi_c).any()


def test_plot_writes_a_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from signalprop.plot.phase import phase_diagram as plot_phase

    pd = phase_diagram("tanh", np.linspace(0.5, 4, 20), np.linspace(0, 0.3, 10))
    path = tmp_path / "phase.png"
    fig = plot_phase(pd, path)
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
    assert fig.axes[0].get_xlabel() == r"$\sigma_w^2$"
    with pytest.raises(ValueError, match="PhaseDiagram"):
        plot_phase({"chi_1": 1}, path)


def test_bad_grids():
    with pytest.raises(ValueError, match=r"sigma_w2_grid values must be finite and in \(0, inf\)"
                       r", got 0.0"):
        phase_diagram("tanh", [0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match=r"sigma_b2_grid values must be finite and in \[0, inf\)"):
        phase_diagram("tanh", [1.0], [-0.1])
    with pytest.raises(ValueError, match="non-empty 1-D grid"):
        phase_diagram("tanh", [], [0.0])
