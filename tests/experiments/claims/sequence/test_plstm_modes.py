"""plstm-modes: decide on hand-made profiles (effect passes, nulls fail), one exact seed,
smoke run."""

from pathlib import Path

import pytest

from signalprop.experiments.claims.sequence.plstm_modes import _one_seed, decide

NAIVE = {"profile": [0.0, 1.6, 2.1, 3.0, 6.0, 15.0, 60.0, 400.0], "row": [0, 0.8, 0.5, 0.3],
         "max": 400.0, "rel_err": 2e-16, "bound": None}
STABLE = {"profile": [0.0, 1.6, 1.2, 1.0, 0.9, 0.8, 0.75, 0.7], "row": [0, 0.8, 0.5, 0.3],
          "max": 1.6, "rel_err": 3e-16, "bound": 14.0}


def _m(**modes):
    run = {"seed": 0, "naive": NAIVE, "P": STABLE, "D": STABLE}
    return {"runs": [{**run, **modes}, {**run, "seed": 1}]}


def test_decide_passes_the_claimed_effect():
    out = decide(_m())
    assert out.reproduced, out.effect
    assert out.details["min_naive_ratio"] == 250.0


@pytest.mark.parametrize("change", [
    {"naive": dict(NAIVE, profile=[0.0, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0])},  # no explosion
    {"naive": dict(NAIVE, row=[0, 0.8, 0.9, 1.2])},                              # 1-D unstable
    {"P": dict(STABLE, max=20.0)},                                               # over bound
    {"D": dict(STABLE, rel_err=1e-3)},                                           # not exact
])
def test_decide_fails_the_nulls(change):
    assert not decide(_m(**change)).reproduced


def test_one_seed_is_exact_and_shows_the_effect():
    r = _one_seed(0, 12, 3)
    assert max(r[m]["rel_err"] for m in ("naive", "P", "D")) < 1e-12
    assert r["naive"]["profile"][-1] > 10 * r["naive"]["profile"][1]
    assert r["P"]["max"] <= r["P"]["bound"] and r["D"]["max"] <= r["D"]["bound"]
    assert len(r["naive"]["map"]) == 12


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("plstm-modes", tmp_path)
