"""Gradient-side result objects: strict-JSON and CSV round trips, the chi overlay."""

import csv
import io
import json
import math

import pytest

from signalprop.results import (
    ConfusionResult,
    GradBlockStats,
    GradSPPResult,
    HessianExtremesResult,
    JacobianSpectrumResult,
    chi_prediction,
    write_csv,
)


def strict(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))


def grad_result(label="m"):
    recs = [GradBlockStats("stem", 0, 1e-3, 2.0, 5.0, 10),
            GradBlockStats("b1", 1, None, None, None, 0),
            GradBlockStats("b2", 2, math.nan, math.inf, math.nan, 4, 7),
            GradBlockStats("b3", 3, 0.0, 0.5, 1.0, 4)]
    return GradSPPResult(label, recs, input_shape=(2, 3), discovery="rule",
                         meta={"transitions": [1]})


def test_grad_spp_round_trips(tmp_path):
    r = grad_result()
    strict(r.save(tmp_path / "g.json").read_text())
    back = GradSPPResult.load(tmp_path / "g.json")
    assert back.records[:2] == r.records[:2] and back.records[3] == r.records[3]
    assert math.isnan(back.records[2].grad_avg_sq_mean) and back.records[2].grad_avg_var == math.inf
    assert back.input_shape == (2, 3) and back.loss == "probe" and back.first_nonfinite.name == "b2"
    rows = list(csv.DictReader(io.StringIO(write_csv([r, grad_result("n")]))))
    assert len(rows) == 8 and rows[4]["label"] == "n"
    assert rows[1]["grad_avg_var"] == "" and float(rows[2]["grad_avg_var"]) == math.inf
    assert float(rows[0]["param_grad_norm"]) == 5.0 and r.to_csv().startswith("label,kind")
    with pytest.raises(ValueError, match="kind must be"):
        GradSPPResult("x", [], kind="guess")


def test_chi_prediction_is_a_geometric_schedule_anchored_on_one_block():
    recs = [GradBlockStats(f"b{i}", i, 0.0, v) for i, v in enumerate([9.0, 3.0, 2.0, 1.0])]
    m = GradSPPResult("mlp", recs)
    # default anchor: the last block; var[l] = var[3] * chi^(3 - l)
    assert chi_prediction(m, 2.0).grad_avg_var == pytest.approx([8.0, 4.0, 2.0, 1.0])
    # per-gap factors, anchored on block 1 (values above it divide)
    p = chi_prediction(m, [0.5, 2.0, 4.0], anchor=1)
    assert p.grad_avg_var == pytest.approx([1.5, 3.0, 1.5, 0.375])
    assert p.kind == "predicted" and p.meta["anchor"] == "b1"
    assert all(r.param_grad_norm is None for r in p.records)
    with pytest.raises(ValueError, match="len\\(records\\) - 1 = 3 entries, got 2"):
        chi_prediction(m, [1.0, 1.0])
    with pytest.raises(ValueError, match="positive and finite"):
        chi_prediction(m, -1.0)
    with pytest.raises(ValueError, match="no finite gradient variance"):
        chi_prediction(grad_result(), 1.0, anchor=1)


def test_confusion_round_trips():
    r = ConfusionResult("a", 4, 6, 0.25, -0.5, math.nan, 0.1, {0.05: -0.4, 0.5: 0.0}, 2.0, 1,
                        [-1.0, 0.0, 1.0], [2, 4], meta={"seed": 0})
    strict(r.to_json())
    back = ConfusionResult.from_json(r.to_json())
    assert back.quantiles == r.quantiles and back.hist_counts == [2, 4] and back.meta == r.meta
    assert math.isnan(back.mean_cosine) and back.eta == 0.25
    rows = list(csv.DictReader(io.StringIO(write_csv([r, r]))))
    assert len(rows) == 2 and float(rows[0]["eta"]) == 0.25 and rows[0]["q0.05"] == "-0.4" and rows[0]["q0.5"] == "0.0"
    assert math.isnan(float(rows[0]["mean_cosine"]))
    with pytest.raises(ValueError, match="hist_edges must have"):
        ConfusionResult("a", 2, 1, 0.0, 0.0, 0.0, 0.0, {}, 1.0, 0, [0.0], [1])


def test_spectra_round_trip(tmp_path):
    s = JacobianSpectrumResult("j", 4, 3, [[2.0, 1.0]], [[0.0, 0.5]], [[0.0, 0.0]], [[1e-3, 0.0]],
                               [math.inf], [0.0], 3, True, 3)
    strict(s.save(tmp_path / "s.json").read_text())
    back = JacobianSpectrumResult.load(tmp_path / "s.json")
    assert back == s and back.batch_size == 1 and back.condition_number == [math.inf]
    h = HessianExtremesResult("h", 10, [3.0, 2.0], [-1.0, -0.5], [0.0, 0.1], [0.2, 0.0], 10,
                              math.nan)
    back_h = HessianExtremesResult.from_json(h.to_json())
    assert back_h.largest == [3.0, 2.0] and back_h.smallest_residual == [0.2, 0.0]
    assert math.isnan(back_h.loss)
