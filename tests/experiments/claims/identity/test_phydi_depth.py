"""phydi-depth: smoke end to end; decide on the claimed effect with realistic spread, on a
null (both methods alike) and on PHYDI failing at one seed."""

from pathlib import Path

from signalprop.experiments.claims.identity.phydi_depth import SIZES, decide

INF = float("inf")


def _m(phydi_deep, none_deep, none_shallow=(120.0, 150.0, 140.0)):
    cells = {"phydi/depth4": {"0.01": [200.0, 220.0, 260.0], "0.05": [90.0, 110.0, 100.0]},
             "none/depth4": {"0.01": [INF] * 3, "0.05": list(none_shallow)},
             "phydi/depth48": {"0.01": [INF, 280.0, INF], "0.05": list(phydi_deep)},
             "none/depth48": {"0.01": list(none_deep), "0.05": [INF] * 3}}
    return {"setup": {"depths": [4, 48], "steps": 300}, "steps_to_threshold": cells}


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("phydi-depth", tmp_path)
    table = res.measurements["steps_to_threshold"]
    assert set(table) == {f"{m}/depth{d}" for m in ("phydi", "none")
                          for d in SIZES["smoke"]["depths"]}


def test_decide_pass_and_fail():
    out = decide(_m([80.0, 100.0, 90.0], [INF, INF, INF]))
    assert out.reproduced, out.effect
    assert out.details["best_lr"]["phydi/depth48"] == "0.05"
    out = decide(_m([80.0, 100.0, 90.0], [250.0, 230.0, 280.0]))  # 2.8x slower: markedly
    assert out.reproduced
    # null: the plain network as fast as PHYDI at depth
    out = decide(_m([80.0, 100.0, 90.0], [90.0, 85.0, 100.0]))
    assert not out.reproduced and not out.details["plain_markedly_slower_at_deepest"]
    # PHYDI misses the threshold in one seed
    out = decide(_m([80.0, INF, 90.0], [INF, INF, INF]))
    assert not out.reproduced and not out.details["phydi_reaches_everywhere"]
    # PHYDI slower than the plain network at the shallow depth
    out = decide(_m([80.0, 100.0, 90.0], [INF] * 3, none_shallow=(40.0, 45.0, 42.0)))
    assert not out.reproduced and not out.details["phydi_not_slower"]["4"]
