"""depth-dp: decide passes the claimed effect at realistic noise and fails each null (no
speed-up, an accuracy loss, an inexact merge, a DP that misses the optimum); the smoke
run writes its files and re-decides alike."""

import random
from pathlib import Path

import pytest

from signalprop.experiments.claims.compression.depth_dp import (
    ACC_MARGIN,
    BUDGET,
    LATENCY_TOL,
    decide,
)


def _seeds(ratios, drops, errors=(1e-15, 3e-16, 8e-16)):
    rng = random.Random(0)
    return [{"seed": s, "acc_original": 97.0 + rng.gauss(0, 0.5),
             "acc_compressed": None, "exact_error": e, "measured_ratio": r,
             "predicted_ratio": r + rng.gauss(0.05, 0.03), "drop": d}
            for s, (r, d, e) in enumerate(zip(ratios, drops, errors))]


def _measurements(ratios=(0.62, 0.71, 0.66), drops=(0.3, -0.5, 1.2),
                  errors=(1e-15, 3e-16, 8e-16), bad_table=False):
    seeds = _seeds(ratios, drops, errors)
    for r in seeds:
        r["acc_compressed"] = r["acc_original"] - r.pop("drop")
    rng = random.Random(1)
    tables = []
    for _ in range(100):
        v, c = rng.gauss(-2, 1), float(rng.randint(1, 30))
        tables.append({"convs": 5, "dp": [v, c], "brute": [v, c]} if rng.random() < 0.8
                      else {"convs": 5, "dp": None, "brute": None})
    if bad_table:
        tables[0] = {"convs": 5, "dp": [-2.0, 5.0], "brute": [-1.5, 7.0]}
    return {"seeds": seeds, "tables": tables, "budget": BUDGET}


def test_decide_passes_the_claimed_effect_at_realistic_noise():
    out = decide(_measurements())
    assert out.reproduced, out.effect
    assert out.details["dp_mismatches"] == 0
    assert out.details["median_measured_ratio"] == pytest.approx(0.66)
    assert out.details["mean_accuracy_drop"] == pytest.approx(1.0 / 3)


@pytest.mark.parametrize("change, failing", [
    ({"ratios": (0.95, 1.02, 0.99)}, "latency_ok"),  # no speed-up
    ({"ratios": (0.80, 0.83, 0.81)}, "latency_ok"),  # just over budget x (1 + tolerance)
    ({"drops": (8.0, 10.0, 6.0)}, "accuracy_ok"),  # the compressed network lost accuracy
    ({"errors": (1e-15, 2e-3, 1e-15)}, "exact"),  # a merge that changes the border
    ({"bad_table": True}, "dp_exact"),  # the DP missed an optimum once
])
def test_decide_fails_each_null(change, failing):
    out = decide(_measurements(**change))
    assert not out.reproduced
    assert out.details[failing] is False
    assert "(FAILS)" in out.effect


def test_the_thresholds():
    assert BUDGET * (1 + LATENCY_TOL) == pytest.approx(0.805)
    assert ACC_MARGIN == 2.0


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("depth-dp", tmp_path)
    row = res.measurements["seeds"][0]
    assert row["merged_depth"] < row["convs"]
    assert row["exact_error"] < 1e-9
    assert set(row["view"]) == {"original", "linearized", "compressed"}
    assert len(res.measurements["tables"]) == 6
