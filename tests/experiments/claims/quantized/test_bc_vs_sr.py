"""bc-vs-sr: decide() fails on nulls and passes on the claimed effect at the pilot's noise;
the MNIST-1D helper trains deterministically; smoke run."""

from pathlib import Path

import pytest

from signalprop.experiments.claims.quantized import bc_vs_sr
from tests.experiments.claims.quantized._noise import seeds


def _bc_sr(sr_mass, bc_mass, fp, bc, sr32, sr256):
    """Synthetic measurements at the pilot's noise (0.5 to 2 points between 4 seeds)."""
    return {"chains": {"sr": {"mass": sr_mass}, "bc": {"mass": bc_mass}},
            "test_acc": {"fp": seeds(fp, 0.5), "bc": seeds(bc, 2.0),
                         "sr b32": seeds(sr32, 2.0), "sr b256": seeds(sr256, 2.0)}}


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


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("bc-vs-sr", tmp_path)


def test_training_helper_is_deterministic_and_picks_lrs_on_validation():
    from signalprop.experiments.claims.quantized._train import best_lr, train_run

    job = {"group": "sr b32", "model": "binary_mlp", "scheme": "sr", "batch": 32, "lr": 3e-3,
           "seed": 1, "depth": 2, "width": 16, "steps": 20}
    a, b = train_run(job), train_run(job)
    assert a["status"] == "completed" and a["test_acc"] == b["test_acc"]
    runs = [{"group": "g", "lr": lr, "val_acc": v} for lr, v in
            ((1e-3, 0.5), (1e-3, 0.6), (3e-3, 0.55), (3e-3, 0.55), (1e-2, 0.2))]
    assert best_lr(runs, "g") == 1e-3  # tie at 0.55: the smaller rate
