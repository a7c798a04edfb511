"""reste-equilibrium: decide() fails on nulls and passes on the claimed effect at the
pilot's noise; Spearman against SciPy; smoke run."""

import math
from pathlib import Path

import pytest

from signalprop.experiments.claims.quantized import reste_equilibrium
from tests.experiments.claims.quantized._noise import normal, seeds


def _reste(ee_slope, gi_slope, d_acc, gain_sd=0.03):
    """Synthetic measurements at the pilot's noise: accuracy spread 1.5 points, 8 seeds."""
    o = [1.0, 1.5, 2.0, 3.0, 4.0]
    ind = {"estimating_error": {}, "gradient_instability": {}}
    for s in range(4):
        ind["estimating_error"][str(s)] = [20 + ee_slope * x + normal(0, 0.5) for x in o]
        ind["gradient_instability"][str(s)] = [math.exp(gi_slope * x + normal(0, 0.3))
                                               for x in o]
    return {"o_ends": o, "indicators": ind,
            "test_acc": {"ste": seeds(57, 1.5, 8), "reste": seeds(57 + d_acc, 1.5, 8)},
            "gain_ratio": {"ste": list(normal(1, gain_sd, 15)),
                           "reste o=3": list(normal(0.97, gain_sd, 15))}}


def test_reste_passes_the_claimed_effect():
    v = reste_equilibrium.decide(_reste(-3.0, 1.0, 1.5))  # ReSTE 1.5 points better
    assert v.reproduced, v.effect


@pytest.mark.parametrize("args", [(0.0, 1.0, 1.5), (-3.0, 0.0, 1.5), (-3.0, 1.0, -3.0),
                                  (-3.0, 1.0, 1.5, 0.3)])
def test_reste_fails_nulls(args):
    assert not reste_equilibrium.decide(_reste(*args)).reproduced


def test_spearman_matches_scipy():
    from scipy import stats

    x, y = [1, 2, 3, 4, 5], [2.0, 1.0, 4.0, 4.0, 9.0]
    assert reste_equilibrium._spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert math.isnan(reste_equilibrium._spearman(x, [1.0] * 5))


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("reste-equilibrium", tmp_path)
