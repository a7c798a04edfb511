"""confusion-width-depth: decide() on synthetic minimum cosines -- a null with no effect,
and one where BN + skip only shift confusion without stopping its growth with depth, must
fail; the claimed effects at the pilot's spread pass; one network at init and trained;
smoke run."""

import math
from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.meanfield.confusion_width_depth import (
    SIZES,
    decide,
    name,
    networks,
    run_network,
)

Q = SIZES["quick"]
# per-seed s.d. of the minimum cosine: the pilot's largest (plain ReLU at depth 32)
SD = {"init": 0.45, "trained": 0.12}
EFFECT = 0.1  # the smallest effect the seeds are sized for


def _means(effect: float, together: bool = True) -> dict[str, float]:
    """Mean minimum cosine per network: every claimed difference equals ``effect``;
    ``together=False``: res + BN is better but loses as much with depth as plain."""
    w, d = Q["widths"], Q["depths"]
    base = -0.3
    means = {name("plain", x, d[1]): base for x in w}
    means[name("plain", w[-1], d[1])] = base + effect
    means[name("plain", w[1], d[0])] = base + effect
    means[name("plain", w[1], d[-1])] = base - effect
    for kind in ("bn", "res"):
        means[name(kind, w[1], d[-1])] = base
    deep_resbn = base if together else base - effect
    means[name("resbn", w[1], d[-1])] = deep_resbn
    means[name("resbn", w[1], d[0])] = deep_resbn + (0.0 if together else 2 * effect)
    return means


def _measurements(means: dict[str, float], rng: np.random.Generator | None) -> dict:
    seeds = {"init": Q["init_seeds"], "trained": Q["trained_seeds"]}
    cos = {p: {k: [float(v) for v in mu + (rng.normal(0, SD[p], seeds[p]) if rng else
                                            np.linspace(-SD[p], SD[p], seeds[p]))]
               for k, mu in means.items()} for p in seeds}
    return {"widths": Q["widths"], "depths": Q["depths"], "min_cosine": cos,
            "init_seeds": seeds["init"], "trained_seeds": seeds["trained"]}


def test_networks_cover_every_check() -> None:
    nets = [name(*n) for n in networks(Q["widths"], Q["depths"])]
    assert len(nets) == len(set(nets)) == 9
    assert set(_means(0.1)) == set(nets)


def test_claimed_effect_passes_at_the_pilot_spread() -> None:
    passed = [decide(_measurements(_means(EFFECT * 1.5), np.random.default_rng(i))).reproduced
              for i in range(20)]
    assert sum(passed) >= 18
    out = decide(_measurements(_means(EFFECT * 1.5), None))
    assert out.reproduced and "12/12 hold" in out.effect


def test_no_effect_fails() -> None:
    flat = {k: -0.3 for k in _means(EFFECT)}
    for i in range(10):
        out = decide(_measurements(flat, np.random.default_rng(i)))
        assert not out.reproduced


def test_bn_and_skip_that_only_shift_confusion_fail_the_final_claim() -> None:
    out = decide(_measurements(_means(0.3, together=False), None))
    checks = out.details["checks"]
    assert checks["init:bn_and_skip_reduce"]["holds"] is False  # deep res+BN = deep plain
    assert checks["init:bn_and_skip_keep_low_with_depth"]["holds"] is False
    assert not out.reproduced


def test_a_network_that_missed_the_target_fails_its_checks() -> None:
    m = _measurements(_means(0.3), None)
    m["min_cosine"]["trained"][name("bn", 64, 32)] = []
    m["missed_target"] = {name("bn", 64, 32): Q["trained_seeds"]}
    out = decide(m)
    assert not out.details["checks"]["trained:bn_reduces"]["measured"]
    assert not out.reproduced and out.details["n_missed_target"] == Q["trained_seeds"]


def test_one_network_measures_and_trains_to_the_target() -> None:
    job = {"kind": "resbn", "width": 16, "depth": 2, "seed": 0, "train": True,
           "target_loss": 2.0, "max_steps": 400}
    r = run_network(job)
    assert -1.0 <= r["init"] <= 1.0 and r["reached"] and not r["diverged"]
    assert -1.0 <= r["trained"] <= 1.0 and 0 < r["steps"] <= 400 and r["steps"] % 25 == 0
    assert run_network(job) == r  # deterministic in the seed
    r = run_network({**job, "train": False})
    assert math.isnan(r["trained"]) and r["steps"] == 0


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("confusion-width-depth", tmp_path)  # files written, result.json re-decides alike
