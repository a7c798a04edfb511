"""sp.plot.compression: the plan panel, SPPs drawn at original depths, Jacobian spectra."""

import matplotlib
import pytest

matplotlib.use("Agg")

import signalprop as sp  # noqa: E402
from signalprop.plot.compression import _depths  # noqa: E402
from signalprop.results import BlockStats, CompressionPlan, JacobianSpectrumResult, SPPResult  # noqa: E402


@pytest.fixture
def plan():
    return CompressionPlan("toy", ["a", "b", "c", "d"], [[], ["r1"], ["r2"], ["r3"], []],
                           [1, 2, 3], [], [2], [["a", "b"], ["c", "d"]], ["r1", "r3"], 0.7,
                           0.6, measured_ratio=0.55)


def _spp(label, n):
    return SPPResult(label, [BlockStats(f"m{i}", i, 0.0, 1.0 + i) for i in range(n)])


def test_depths_follow_the_segments(plan):
    assert _depths(plan, _spp("original", 4)) == [1, 2, 3, 4]
    assert _depths(plan, _spp("compressed", 2)) == [2, 4] == plan.depths
    assert _depths(plan, _spp("other", 3)) == [0, 1, 2]


def test_figure_with_every_panel(plan, tmp_path):
    jac = JacobianSpectrumResult("j", 4, 2, [[2.0, 1.0]], [[0.5, 1.0]], [[0.0] * 2],
                                 [[0.0] * 2], [2.5], [0.0], 2, True, 2)
    path = sp.plot.compression(plan, tmp_path / "c.png",
                               spp={"original": _spp("o", 4), "compressed": _spp("c", 2)},
                               jacobian={"original": jac})
    assert path.stat().st_size > 0
    assert sp.plot.compression(plan, tmp_path / "plan.svg").stat().st_size > 0
