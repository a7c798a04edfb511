"""nf-spp: the smoke run writes its files and prints a verdict line (verdict not asserted);
the shape checks decide as their definitions say; decide on hand-made SPPs."""

from pathlib import Path

from signalprop.experiments.claims.normfree.nf_spp import check_bn, check_nf, check_none, decide


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("nf-spp", tmp_path)
    per_seed = res.measurements["per_seed"][0]
    assert set(per_seed) == {"seed", "bn", "none", "nf"}
    assert len(per_seed["nf"]["avg_var"]) == 1 + sum((3, 4, 6, 3))
    assert res.measurements["stage_depths"] == [3, 4, 6, 3]


def test_shape_checks() -> None:
    # BN: growth 3x in each stage, drop 2.5x at the transition -> ok; a flat stage fails.
    assert check_bn([1, 1, 2, 3, 1.2, 2.4, 3.6], (3, 3))["ok"]
    assert not check_bn([1, 1, 1.1, 1.2, 0.5, 1.0, 1.5], (3, 3))["ok"]
    assert not check_bn([1, 1, 2, 3, 2.0, 4.0, 6.0], (3, 3))["ok"]  # no reset
    # none: the mean must overtake the variance and grow 10x.
    assert check_none([1.0, 0.5, 6.0], [1.0, 1.0, 2.0])["ok"]
    assert not check_none([1.0, 0.5, 1.0], [1.0, 1.0, 2.0])["ok"]
    # NF: residual blocks only; a large mean, a small residual variance or a deviation fail.
    good = dict(sq_mean=[3.0, 0.01, 0.02], var=[1.0, 1.04, 1.08], res_var=[None, 1.0, 0.9],
                predicted_var=[1.0, 1.04, 1.08])
    assert check_nf(**good)["ok"]
    assert not check_nf(**{**good, "sq_mean": [0.0, 0.5, 0.0]})["ok"]
    assert not check_nf(**{**good, "res_var": [None, 0.3, 1.0]})["ok"]
    assert not check_nf(**{**good, "var": [1.0, 1.04, 1.5]})["ok"]


def _seed(seed: int, bn_var: list[float]) -> dict:
    """Two stages of three blocks after the stem: BN as given; none with a mean shift; NF
    on its predicted 1 + k alpha^2 schedule (alpha^2 = 0.04), reset at the transition."""
    n = len(bn_var)
    nf_var = [1.0, 1.0, 1.04, 1.08, 1.0, 1.04, 1.08]
    return {"seed": seed,
            "bn": {"avg_sq_mean": [0.0] * n, "avg_var": bn_var, "res_var": [None] + [1.0] * 6,
                   "predicted_var": [1.0] * n, "nonfinite": False},
            "none": {"avg_sq_mean": [0.0, 0.2, 1.0, 3.0, 6.0, 12.0, 30.0],
                     "avg_var": [1.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0],
                     "res_var": [None] + [1.0] * 6, "predicted_var": [1.0] * n,
                     "nonfinite": False},
            "nf": {"avg_sq_mean": [0.5, 0.01, 0.02, 0.01, 0.02, 0.03, 0.02],
                   "avg_var": [v * (1 + 0.02 * (-1) ** i) for i, v in enumerate(nf_var)],
                   "res_var": [None, 1.0, 0.95, 1.05, 0.9, 1.0, 1.1],
                   "predicted_var": nf_var, "nonfinite": False}}


def _measurements(*seeds: dict) -> dict:
    return {"model": "toy", "input_hw": 32, "batch_size": 4, "seeds": [s["seed"] for s in seeds],
            "stage_depths": [3, 3], "per_seed": list(seeds)}


def test_decide_passes_the_papers_shapes_and_fails_a_flat_bn_stage() -> None:
    grows = [1.0, 1.0, 2.1, 3.3, 1.1, 2.2, 3.4]  # x3.3 per stage, drop x3 at the transition
    out = decide(_measurements(_seed(0, grows), _seed(1, [v * 1.1 for v in grows])))
    assert out.reproduced, out.effect
    assert out.effect.startswith("toy at 32x32, 2 seed(s): BN min stage growth 3.09x")
    assert out.details["ok"] == {"bn": True, "none": True, "nf": True}
    flat = [1.0, 1.0, 1.2, 1.5, 0.7, 1.0, 1.4]  # second seed: BN grows only 1.5x in a stage
    out = decide(_measurements(_seed(0, grows), _seed(1, flat)))
    assert not out.reproduced
    assert out.details["ok"] == {"bn": False, "none": True, "nf": True}
    assert "(FAILS)" in out.effect
