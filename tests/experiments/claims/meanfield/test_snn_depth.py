"""snn-depth: decide() on synthetic accuracies -- nulls (no effect; every network losing
the same with depth; only one comparator degrading) fail, the claimed effect at the
pilot's spread passes; smoke run."""

from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.meanfield.snn_depth import BN, EFFECT, RELU, SIZES, SNN, decide

SD = 0.02  # per-seed s.d. of the test accuracy (pilot)
SEEDS = len(SIZES["quick"]["eval_seeds"])


def _measurements(means: dict[tuple[str, int], float], rng: np.random.Generator | None,
                  diverged: dict[str, int] | None = None) -> dict:
    acc = {}
    for (model, depth), mu in means.items():
        noise = rng.normal(0, SD, SEEDS) if rng else np.linspace(-SD, SD, SEEDS)
        acc[f"{model}|{depth}"] = [float(v) for v in mu + noise]
    return {"depths": [4, 32], "eval_seeds": list(range(SEEDS)), "test_acc": acc,
            "diverged": diverged or {}}


def _means(snn_drop: float, relu_drop: float, bn_drop: float) -> dict:
    return {(SNN, 4): 0.62, (SNN, 32): 0.62 - snn_drop, (RELU, 4): 0.62,
            (RELU, 32): 0.62 - relu_drop, (BN, 4): 0.63, (BN, 32): 0.63 - bn_drop}


def test_claimed_effect_passes_at_the_pilot_spread() -> None:
    claimed = _means(0.0, 1.5 * EFFECT, 1.5 * EFFECT)
    passed = [decide(_measurements(claimed, np.random.default_rng(i))).reproduced
              for i in range(20)]
    assert sum(passed) >= 18
    out = decide(_measurements(claimed, None, {"ReLU|32": 1}))
    assert out.reproduced, out.effect
    assert "1 diverged runs" in out.effect and "detectable" in out.effect


def test_no_effect_fails() -> None:
    for i in range(10):
        assert not decide(_measurements(_means(0.0, 0.0, 0.0), np.random.default_rng(i))
                          ).reproduced


def test_every_network_losing_the_same_fails() -> None:
    out = decide(_measurements(_means(0.08, 0.08, 0.08), None))
    assert not out.reproduced
    assert not out.details["per_comparator"][RELU]["loses_more_with_depth"]


def test_one_comparator_holding_its_accuracy_fails() -> None:
    out = decide(_measurements(_means(0.0, 0.08, 0.0), None))
    per = out.details["per_comparator"]
    assert per[RELU]["loses_more_with_depth"] and per[RELU]["snn_beats_it_deepest"]
    assert not per[BN]["loses_more_with_depth"] and not out.reproduced


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("snn-depth", tmp_path)  # files written, result.json re-decides alike
