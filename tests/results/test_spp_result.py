"""SPPResult JSON/CSV round trips, strict JSON for non-finite values."""

import json
import math

import pytest

from signalprop.results import BlockStats, SPPResult, write_csv


def _result(label="m"):
    recs = [
        BlockStats("stem", 0, 0.5, 1.25, None, 0),
        BlockStats("stages.0.0", 1, 1e-3, 1.04, 0.98, 0),
        BlockStats("stages.0.1", 2, math.nan, math.inf, math.nan, 12),
    ]
    return SPPResult(label, recs, input_shape=(2, 3, 8, 8), discovery="rule",
                     meta={"transitions": [1]})


def test_json_round_trip_is_strict_json(tmp_path):
    r = _result()
    text = r.save(tmp_path / "r.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    back = SPPResult.load(tmp_path / "r.json")
    assert back.records[:2] == r.records[:2]
    assert math.isnan(back.records[2].avg_sq_mean) and back.records[2].avg_var == math.inf
    assert back.input_shape == (2, 3, 8, 8) and back.meta == {"transitions": [1]}
    assert back.first_nonfinite.name == "stages.0.1"
    assert SPPResult.from_json(text).label == "m"


def test_csv_round_trip_of_several_results(tmp_path):
    a, b = _result("a"), _result("b")
    write_csv([a, b], tmp_path / "t.csv")
    back = SPPResult.from_csv((tmp_path / "t.csv").read_text())
    assert [r.label for r in back] == ["a", "b"]
    assert back[0].records[0].res_var is None
    assert back[1].records[1] == b.records[1]
    assert math.isinf(back[0].records[2].avg_var)
    assert a.to_csv().splitlines()[0].startswith("label,kind,name,index")


def test_kind_is_validated():
    with pytest.raises(ValueError, match="kind must be 'measured' or 'predicted'"):
        SPPResult("x", [], kind="guess")
