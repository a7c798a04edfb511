"""snn-depth: decide() on synthetic accuracies -- nulls (no effect; every network losing
the same with depth; only one comparator degrading) fail, the claimed effect at the
pilot's spread passes; smoke run."""

from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.meanfield.snn_depth import (
    BN,
    EFFECT,
    RELU,
    SIZES,
    SNN,
    decide,
    setting_name,
    settings,
)

SD = 0.031  # per-seed s.d. of the test accuracy (pilot, pooled)
SEEDS = len(SIZES["quick"]["eval_seeds"])


def _measurements(means: dict[tuple[str, int], float], rng: np.random.Generator | None,
                  diverged: dict[str, int] | None = None) -> dict:
    """Judged test accuracies per setting; the SNN's second dropout rate validates worse
    (and tests at chance: it must not be the one judged)."""
    entries = {}
    for (model, depth), mu in means.items():
        noise = rng.normal(0, SD, SEEDS) if rng else np.linspace(-SD, SD, SEEDS)
        n_div = (diverged or {}).get(f"{model}|{depth}", 0)
        entry = {"lr": 0.03, "lr_grid": [0.01, 0.03], "val_acc": [[0.5, 0.5], [0.6, 0.6]],
                 "test_acc": [float(v) for v in mu + noise],
                 "diverged": [i < n_div for i in range(SEEDS)]}
        if model == SNN:
            entries[setting_name(model, depth, 0.0)] = entry
            entries[setting_name(model, depth, 0.05)] = {
                **entry, "val_acc": [[0.5, 0.5], [0.55, 0.55]], "test_acc": [0.1] * SEEDS}
        else:
            entries[setting_name(model, depth)] = entry
    return {"depths": [4, 32], "eval_seeds": list(range(SEEDS)), "snn_dropouts": [0.0, 0.05],
            "settings": entries}


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
    assert "1 judged runs diverged" in out.effect and "detectable" in out.effect
    assert out.details["judged"][setting_name(SNN, 32)] == "SNN|32|drop0"


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


def test_settings_cover_every_network_and_dropout() -> None:
    cells, grids = settings({**SIZES["quick"], "snn_dropouts": [0.0, 0.05]})
    assert sorted(cells) == sorted([setting_name(SNN, d, p) for d in (4, 32) for p in (0.0, 0.05)]
                                   + [setting_name(m, d) for m in (RELU, BN) for d in (4, 32)])
    assert cells[setting_name(BN, 32)]["model_args.batchnorm"] is True
    assert cells[setting_name(SNN, 4, 0.05)]["model_args.dropout"] == 0.05
    assert grids[setting_name(BN, 4)] == SIZES["quick"]["lrs"][BN]


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("snn-depth", tmp_path)  # files written, result.json re-decides alike
