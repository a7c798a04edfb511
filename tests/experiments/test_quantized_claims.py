"""The low-precision claims: decide() fails on a synthetic null and passes on the claimed
effect at realistic seed-to-seed noise; smoke runs end to end."""

import math
from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.quantized import bc_vs_sr, binary_spp, reste_equilibrium

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fresh_rng():
    """Every test draws the same synthetic noise, whichever tests run before it."""
    global RNG
    RNG = np.random.default_rng(0)


def _seeds(mean, sd, n=4):
    return list(RNG.normal(mean, sd, n))


# ---- bc-vs-sr ----------------------------------------------------------------------------
def _bc_sr(sr_mass, bc_mass, fp, bc, sr32, sr256):
    """Synthetic measurements at the pilot's noise (0.5 to 2 points between 4 seeds)."""
    return {"chains": {"sr": {"mass": sr_mass}, "bc": {"mass": bc_mass}},
            "test_acc": {"fp": _seeds(fp, 0.5), "bc": _seeds(bc, 2.0),
                         "sr b32": _seeds(sr32, 2.0), "sr b256": _seeds(sr256, 2.0)}}


def test_bc_vs_sr_passes_the_claimed_effect():
    m = _bc_sr([0.531, 0.534, 0.534, 0.534], [0.72, 0.84, 0.89, 0.893], 66, 63, 50, 58)
    v = bc_vs_sr.decide(m)
    assert v.reproduced, v.effect


@pytest.mark.parametrize("change", [
    {"sr_mass": [0.5, 0.6, 0.7, 0.8]},                 # SR anneals after all
    {"bc_mass": [0.72, 0.72, 0.72, 0.72]},             # BC does not
    {"sr32": 63.0, "sr256": 63.0},                     # no SR gap (null)
    {"bc": 56.0, "sr32": 45.0},                        # BC far from full precision
    {"sr256": 50.0},                                   # no rescue by the batch
])
def test_bc_vs_sr_fails_nulls(change):
    args = {"sr_mass": [0.531, 0.534, 0.534, 0.534], "bc_mass": [0.72, 0.84, 0.89, 0.893],
            "fp": 66, "bc": 63, "sr32": 50, "sr256": 58, **change}
    assert not bc_vs_sr.decide(_bc_sr(**args)).reproduced


# ---- reste-equilibrium -------------------------------------------------------------------
def _reste(ee_slope, gi_slope, d_acc, gain_sd=0.03):
    """Synthetic measurements at the pilot's noise: accuracy spread 1.5 points, 8 seeds."""
    o = [1.0, 1.5, 2.0, 3.0, 4.0]
    ind = {"estimating_error": {}, "gradient_instability": {}}
    for s in range(4):
        ind["estimating_error"][str(s)] = [20 + ee_slope * x + RNG.normal(0, 0.5) for x in o]
        ind["gradient_instability"][str(s)] = [math.exp(gi_slope * x + RNG.normal(0, 0.3))
                                               for x in o]
    return {"o_ends": o, "indicators": ind,
            "test_acc": {"ste": _seeds(57, 1.5, 8), "reste": _seeds(57 + d_acc, 1.5, 8)},
            "gain_ratio": {"ste": list(RNG.normal(1, gain_sd, 15)),
                           "reste o=3": list(RNG.normal(0.97, gain_sd, 15))}}


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


# ---- binary-spp ----------------------------------------------------------------------------
def _spp(gain_factor, res_shift, sd=0.01):
    pred = {"binary mean_abs": 2 / math.pi, "ternary mean_abs": 0.808,
            "4-bit mean_abs": 0.971, "binary rms": 1.0}
    gains = {k: [(p * gain_factor if k != "binary rms" else 1.0) * (1 + RNG.normal(0, sd))
                 for _ in range(4)] for k, p in pred.items()}
    return {"mlp": {"gain": gains, "predicted": pred},
            "resnet": {"log_ratio": {"binary mean_abs": list(RNG.normal(-1.2 + res_shift, 0.1, 4)),
                                     "binary rms": list(RNG.normal(res_shift, 0.1, 4))},
                       "predicted_log_ratio": {"binary mean_abs": -1.2, "binary rms": 0.0}}}


def test_binary_spp_passes_the_claimed_effect():
    v = binary_spp.decide(_spp(1.0, 0.0))
    assert v.reproduced, v.effect


@pytest.mark.parametrize("gain_factor, res_shift", [(math.pi / 2, 0.0), (1.0, 1.2)])
def test_binary_spp_fails_nulls(gain_factor, res_shift):
    # null: quantization leaves the variance alone (gain 1, ResNet ratio 1)
    assert not binary_spp.decide(_spp(gain_factor, res_shift)).reproduced


def test_fitted_gain_is_the_geometric_rate():
    assert binary_spp._fitted_gain([2.0 * 0.6 ** k for k in range(6)]) == pytest.approx(0.6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bc-vs-sr", "reste-equilibrium", "binary-spp"])
def test_smoke_end_to_end(name: str, tmp_path: Path, smoke_run) -> None:
    smoke_run(name, tmp_path)
