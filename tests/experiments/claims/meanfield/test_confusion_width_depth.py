"""confusion-width-depth: the mini-batch confusion matches a loop over mini-batches; decide
on hand-made minimum cosines; the quick design covers every network decide reads; smoke."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from signalprop.experiments import RunContext
from signalprop.experiments._models import relu_mlp
from signalprop.experiments.claims.meanfield.confusion_width_depth import (
    SIZES,
    decide,
    measure,
    minibatch_confusion,
)


def test_minibatch_confusion_matches_loop() -> None:
    torch.manual_seed(0)
    model = relu_mlp(2, 8, 5, 3)
    x, y = torch.randn(24, 5), torch.randint(0, 3, (24,))
    res = minibatch_confusion(model, x, y, batch=4)
    grads = []
    for i in range(0, 24, 4):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 4]), y[i:i + 4]).backward()
        grads.append(np.concatenate([p.grad.numpy().ravel() for p in model.parameters()]))
    g = np.array(grads, dtype=np.float64)
    cos = [g[i] @ g[j] / np.linalg.norm(g[i]) / np.linalg.norm(g[j])
           for i in range(6) for j in range(i + 1, 6)]
    assert res.n_pairs == 15
    assert res.min_cosine == pytest.approx(min(cos), abs=1e-6)
    assert res.mean_cosine == pytest.approx(np.mean(cos), abs=1e-6)


def _measurements(init: dict[str, list[float]], trained: dict[str, list[float]]) -> dict:
    return {"widths": [16, 64, 256], "depths": [2, 8, 32], "seeds": [0, 1, 2, 3],
            "min_cosine": {"init": init, "trained": trained}}


# less confusion (higher min cosine) when wider, shallower, with BN or skips
EFFECT = {"w256_d8": [-0.10, -0.12, -0.08, -0.11], "w16_d8": [-0.40, -0.35, -0.45, -0.38],
          "w64_d2": [0.05, 0.02, 0.06, 0.04], "w64_d8": [-0.20, -0.22, -0.18, -0.21],
          "w64_d32": [-0.60, -0.55, -0.65, -0.58], "bn": [-0.20, -0.25, -0.22, -0.18],
          "res": [-0.30, -0.28, -0.33, -0.31], "res+bn": [-0.1, -0.1, -0.1, -0.1]}


def test_decide_passes_the_claimed_ordering_and_fails_the_null() -> None:
    out = decide(_measurements(EFFECT, EFFECT))
    assert out.reproduced, out.effect
    assert len(out.details["checks"]) == 8 and out.effect.endswith("8/8 hold")
    # the null, at the quick run's noise (s.e. ~0.07): width does not matter at init
    noisy = {**EFFECT, "w256_d8": [-0.20, -0.45, 0.05, -0.30], "w16_d8": [-0.30, -0.2, -0.45,
                                                                         -0.35]}
    out = decide(_measurements(noisy, EFFECT))
    assert not out.reproduced and out.effect.endswith("7/8 hold")
    assert not out.details["checks"]["init:wider_less_confused"]["holds"]


def test_quick_design_covers_the_criterion(tmp_path: Path) -> None:
    """The quick grids give ``decide`` every network it reads (checked on the design only:
    the sweep is replaced by a recorder, nothing trains)."""
    calls: list[tuple[str, dict, dict]] = []

    class Stop(Exception):
        pass

    class Recorder(RunContext):
        def sweep(self, name, base, grid, seeds):  # noqa: ANN001, ANN201
            calls.append((name, base, grid))
            if name == "res-bn":
                raise Stop
            return []

    with pytest.raises(Stop):
        measure(Recorder("quick", tmp_path, progress=False), SIZES["quick"])
    got = {(w, d) for _, _, g in calls[:2] for w in g["model_args.width"]
           for d in g["model_args.depth"]}
    # widest/narrowest at the middle depth, shallowest/deepest at the middle width
    assert {(16, 8), (64, 8), (256, 8), (64, 2), (64, 32)} == got
    assert all(b["schedule"] == "cosine" and b["batch_size"] == 128 for _, b, _ in calls)
    assert {f"w{w}_d{d}" for w, d in got} | {"bn", "res", "res+bn"} == set(EFFECT)


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("confusion-width-depth", tmp_path)  # files written, result.json re-decides alike
