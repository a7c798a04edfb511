"""nf-spp: the smoke run writes its files and prints a verdict line (verdict not asserted);
the shape checks decide as their definitions say."""

from pathlib import Path

from signalprop.experiments.claims.nf_spp import check_bn, check_nf, check_none


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("nf-spp", tmp_path)
    per_seed = res.measurements["per_seed"][0]
    assert set(per_seed) == {"seed", "bn", "none", "nf"}
    assert len(per_seed["nf"]["avg_var"]) == 1 + sum((3, 4, 6, 3))


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
