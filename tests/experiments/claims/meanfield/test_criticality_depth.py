"""criticality-depth: decide on hand-made accuracies (peak at the critical point, cells
inside / outside the predicted band); smoke run."""

from pathlib import Path

import pytest

from signalprop.experiments.claims.meanfield.criticality_depth import decide

XI = {"1": 3.63, "1.76": 5000.0, "4": 7.0}


def _measurements(mean_acc: dict[tuple[float, int], float]) -> dict:
    """Two seeds per cell, scattered +-0.02 around ``mean_acc``."""
    return {"sigma_w2": [1.0, 1.76, 4.0], "depths": [4, 64, 128], "critical_sigma_w2": 1.76,
            "xi_c": XI, "test_acc": {f"{s:g},{d}": [a - 0.02, a + 0.02]
                                     for (s, d), a in mean_acc.items()}}


def test_decide_passes_the_predicted_pattern_and_fails_a_moved_peak() -> None:
    acc = {(s, d): 0.9 for s in (1.0, 1.76, 4.0) for d in (4, 64, 128)}
    # predicted (3 xi_c < depth < 12 xi_c is the band, not counted): sigma_w^2 = 1 trains
    # at 4 (< 10.9) and not at 64, 128 (> 43.6); 1.76 trains everywhere (xi_c = 5000);
    # 4 trains at 4 (< 21), 64 is inside the band, not 128 (> 84)
    for cell in ((1.0, 64), (1.0, 128), (4.0, 64), (4.0, 128)):
        acc[cell] = 0.1
    out = decide(_measurements(acc))
    assert out.reproduced, out.effect
    assert out.details["n_predicted_fail"] == 3 and out.details["n_predicted_train"] == 5
    assert out.details["agreement"] == 1.0
    assert out.details["max_trainable_depth"] == {"1": 4, "1.76": 128, "4": 4}
    assert out.effect.startswith("largest trainable depth per sigma_w^2 1: 4, 1.76: 128, 4: 4")
    # the peak is no longer at the critical point
    out = decide(_measurements({**acc, (1.76, 64): 0.1, (1.76, 128): 0.1, (1.0, 64): 0.9}))
    assert not out.details["peak_at_critical"] and not out.reproduced
    # the null: depth does not matter (every cell trains): 5 of 8 cells agree
    out = decide(_measurements({k: 0.9 for k in acc}))
    assert not out.reproduced and out.details["agreement"] == pytest.approx(5 / 8)


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("criticality-depth", tmp_path)  # files written, result.json re-decides alike
