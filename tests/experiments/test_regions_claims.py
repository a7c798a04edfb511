"""The linear-region claims: criteria tested on hand-made measurements (a null that must
fail, the claimed effect at realistic noise that must pass), then a smoke run each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from signalprop.experiments.claims.regions import region_density, ternary_regions


def _cells(shortfall: dict[str, int] | None = None, over: bool = False) -> dict:
    """Counts equal to the bounds of every cell (what the constructions give)."""
    cells = []
    for n in (3, 4, 5):
        for depth in (1, 2, 3):
            general = (n + 1) ** depth
            for kind in ternary_regions.KINDS:
                bound = ((n + 1) // 2) ** depth if kind == "ternary" else general
                cells.append({"kind": kind, "width": n, "depth": depth, "count": bound,
                              "bound": bound, "general_bound": general,
                              "upper": (2 * n + 2) ** (2 * depth)})
    for c in cells:
        if shortfall and c["kind"] in shortfall and c["width"] == 5 and c["depth"] == 3:
            c["count"] -= shortfall[c["kind"]]
        if over and c["kind"] == "relu" and c["width"] == 3 and c["depth"] == 1:
            c["count"] = c["upper"] + 1
    return {"cells": cells, "plane_cells": [{"teeth": 2, "depth": 1, "count": 4, "bound": 4}]}


def test_ternary_regions_passes_when_every_count_reaches_its_bound():
    v = ternary_regions.decide(_cells())
    assert v.reproduced and v.details["matched_general"] == v.details["matching_cells"] == 27


def test_ternary_regions_fails_one_region_short_anywhere():
    for kind in ternary_regions.KINDS:
        v = ternary_regions.decide(_cells({kind: 1}))
        assert not v.reproduced, kind
        assert v.details["below_bound"] == [f"{kind} n=5 L=3"]
    assert not ternary_regions.decide(_cells(over=True)).reproduced
    short_plane = _cells()
    short_plane["plane_cells"][0]["count"] = 3
    assert not ternary_regions.decide(short_plane).reproduced


def _density_rows(law, ternary_factor: float = 1.0, noise: float = 0.15, seed: int = 0):
    """Per-seed densities law(depth, width) with multiplicative seed noise like the
    pilot's (about 15% between networks)."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, factor in (("gaussian", 1.0), ("ternary", ternary_factor)):
        for depth in (1, 2, 4, 8):
            for width in (16, 32, 64):
                for s in range(3):
                    d = factor * law(depth, width) * float(np.exp(rng.normal(0, noise)))
                    rows.append({"kind": kind, "depth": depth, "width": width, "seed": s,
                                 "density": d})
    return {"rows": rows, "length": 4.0}


def test_region_density_passes_for_density_proportional_to_neurons():
    for seed in range(5):
        m = _density_rows(lambda d, w: 0.045 * d * w, ternary_factor=1.2, seed=seed)
        v = region_density.decide(m)
        assert v.reproduced, v.effect
        assert abs(v.details["slope"] - 1) < 0.1


def test_region_density_fails_for_exponential_depth_or_unlike_ternary_nets():
    exponential = _density_rows(lambda d, w: 0.045 * w * 1.6 ** d)
    assert not region_density.decide(exponential).reproduced
    width_only = _density_rows(lambda d, w: 0.045 * w)  # depth adds nothing
    assert not region_density.decide(width_only).reproduced
    unlike = _density_rows(lambda d, w: 0.045 * d * w, ternary_factor=3.0)
    v = region_density.decide(unlike)
    assert not v.reproduced and not v.details["ternary_alike"]


@pytest.mark.slow
def test_claims_run_at_smoke_size(tmp_path: Path, smoke_run):
    # exact counts: the construction claim reproduces even at smoke size
    assert smoke_run("ternary-regions", tmp_path).reproduced
    smoke_run("region-density", tmp_path)
