"""The one serialization mechanism (results/_base.py): every result class round-trips
through JSON text, .json and .csv files, with strict JSON and clear errors."""

import json
import math
from dataclasses import dataclass, field

import pytest
import torch

from signalprop.results import (
    BatchIndependenceResult,
    BlockStats,
    CompressionPlan,
    ConfusionResult,
    ConvLayerSpectrum,
    ConvSpectraResult,
    ConvSpectrumResult,
    EstimatorIndicatorsResult,
    Existence,
    GradBlockStats,
    GradSPPResult,
    GramResult,
    HessianExtremesResult,
    JacobianSpectrumResult,
    LatencyTable,
    LayerIndicators,
    PlaneRegionsResult,
    RegionDensityResult,
    RegionsResult,
    Result,
    RoundingChainResult,
    SPPResult,
    write_csv,
)
from signalprop.results._base import SKIP, decode, encode
from signalprop.results.collapse import CollapseResult
from signalprop.results.effective_lr import EffectiveLRResult, ParamLR
from signalprop.results.regions import RegionBoundsResult
from signalprop.results.sequence import LengthBlockStats, LengthSPPResult, SpatialJacobianResult

NAN, INF = math.nan, math.inf


def examples():
    return [
        SPPResult("s", [BlockStats("a", 0, 0.5, NAN, None, 3)], input_shape=(2, 3),
                  meta={"transitions": [0], "x": INF}),
        GradSPPResult("g", [GradBlockStats("a", 0, None, 2.0, 1.0, 4)], loss="loss_fn"),
        ConfusionResult("c", 3, 3, 0.5, -0.5, 0.1, 0.4, {0.5: 0.2, 0.05: -INF}, 2.0, 0,
                        [-1.0, 0.0, 1.0], [1, 2]),
        BatchIndependenceResult({"train": NAN}, {"train": 1.0}, {"train": "bn"},
                                {"train": "bn"}, 1e-5, 0, 4, label="b"),
        JacobianSpectrumResult("j", 2, 2, [[2.0]], [[0.0]], [[0.0]], [[1e-3]], [INF], [0.0],
                               2, True, 2),
        HessianExtremesResult("h", 3, [2.0], [-1.0], [0.0], [0.0], 3, NAN),
        GramResult("gram", torch.tensor([[1.0, -0.5], [-0.5, 2.0]], dtype=torch.float64),
                   layers={"0": torch.eye(2, dtype=torch.float64)}, strategies={"0": "factorized"}),
        EstimatorIndicatorsResult("q", [LayerIndicators("fc", 0, "reste", 2.0, NAN, 0.1, 4)],
                                  step=3, meta={"estimator_params": {"fc": {"o": 3.0}}}),
        RoundingChainResult("sr", "sr", 0.01, 2.0, [-1.0, 1.0], [0.25, 0.75], 2),
        RegionsResult("r", [2], f64([0.5]), [False], f64([[0.0], [NAN]]), f64([[-1.0], [1.0]]),
                      ["a" * 16, "b" * 16], [2.0], 1, ["relu[1]"]),
        PlaneRegionsResult("p", (0.0, 1.0, 0.0, 1.0), 1,
                           f64([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), [4],
                           ["0" * 16], f64([[0.0]]), f64([[[0.0, INF]]]), 0, []),
        RegionDensityResult("d", [2, 4, 3, 3], 2.0, 2, 2, 4, [4]),
        RegionBoundsResult([3, 3], 1, 16, 16, 9, 16, 16, 4, 1, {"serra": "Serra et al. 2018"}),
        LengthSPPResult("l", [LengthBlockStats("b", 0, 4, 0.0, 1.0, 1.0),
                              LengthBlockStats("b", 0, 8, NAN, 2.0, 1.4, 0.9, 1)]),
        CollapseResult(0.125, 40.2, 0.9, NAN, 0, 64, 256, 1e-3),
        EffectiveLRResult([ParamLR("a", 0.1, 4.0, 0.025, scale_invariant=True),
                           ParamLR("b", 0.1, 1.0, INF, scale_invariant=False)]),
        SpatialJacobianResult("sj", f64([[1.0, 0.5], [0.5, INF]]), (0, 0), (1, 2, 2), (1, 2, 2)),
        ConvSpectrumResult("c", "Conv2d", (1, 2), (1, 2), "fft", True, 2, 2.0, 0.0, (2.0, 2.0),
                           (0.0, 0.0), torch.tensor([2.0, 0.0], dtype=torch.float64)),
        ConvSpectraResult("m", [ConvLayerSpectrum("c", 0, "Conv1d", (1, 2), (1, 2), "bounds",
                                                  False, 2, 1.0, 0.5, 1.0, 1.5, 0.0, 0.5)]),
        Existence(False, "RO", "M > C k^d", meta={"M": 2}),
        LatencyTable(["a", "b"], {"0:1": 1e-3, "1:2": INF}, {"1": 1e-4}, NAN, 2e-3,
                     {"0:2": "a pooling lies between"}, input_shape=[2, 1, 8, 8]),
        CompressionPlan("plan", ["a", "b"], [[], ["r"], []], [1], [], [], [["a", "b"]], ["r"],
                        0.7, 1.5e-3, importance_table={"0:2": -0.1}, measured_ratio=NAN,
                        table=LatencyTable(["a", "b"], {"0:2": 1e-3}, {}, 0.0, 2e-3)),
    ]


def f64(values):
    return torch.tensor(values, dtype=torch.float64)


def same(a, b):
    """Equal, with NaN equal to NaN and tensors compared exactly."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and b.dtype == torch.float64 and a.shape == b.shape
                and torch.allclose(a.double(), b, rtol=0, atol=0, equal_nan=True))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(same(getattr(a, f), getattr(b, f))
                                          for f in a.__dataclass_fields__)
    return a == b


@pytest.mark.parametrize("res", examples(), ids=lambda r: type(r).__name__)
def test_json_text_and_files_round_trip(res, tmp_path):
    text = res.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    assert same(type(res).from_json(text), res)
    path = res.save(tmp_path / "sub" / "r.json")
    assert same(type(res).load(path), res)
    assert not list(tmp_path.rglob("*.tmp"))
    csv_text = res.save(tmp_path / "r.csv").read_text()
    assert csv_text.startswith("label,") and csv_text == res.to_csv()


def test_every_result_class_in_the_package_is_covered():
    import signalprop.results as results

    classes = {getattr(results, n) for n in results.__all__}
    covered = {type(r) for r in examples()}
    assert {c for c in classes if isinstance(c, type) and issubclass(c, Result)} - {Result} \
        == covered


def test_record_results_read_back_from_csv():
    a = SPPResult("a", [BlockStats("0", 0, 0.5, INF, None, 0), BlockStats("b", 1, 0.0, 1.0, 2.0)])
    b = SPPResult("b", [BlockStats("x", 0, NAN, 1.0)], kind="predicted")
    back = SPPResult.from_csv(write_csv([a, b]))
    assert [r.label for r in back] == ["a", "b"] and back[1].kind == "predicted"
    assert back[0].records == a.records and math.isnan(back[1].records[0].avg_sq_mean)
    with pytest.raises(ValueError, match="has no records"):
        ConfusionResult.from_csv("label\n")


def test_errors_name_the_problem(tmp_path):
    r = examples()[0]
    with pytest.raises(ValueError, match=r"must end in one of \['.json', '.csv'\]"):
        r.save(tmp_path / "r.txt")
    with pytest.raises(ValueError, match="use SPPResult.load"):
        SPPResult.from_json(str(tmp_path / "r.json"))
    (tmp_path / "bad.json").write_text('{"label": "x", "records": [], "colour": 1}')
    with pytest.raises(ValueError, match=r"bad.json: SPPResult: unknown field\(s\) \['colour'\]"):
        SPPResult.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"missing field\(s\) \['records'\]"):
        SPPResult.from_json('{"label": "x"}')
    with pytest.raises(ValueError, match="results of one class"):
        write_csv(examples()[:2])
    with pytest.raises(TypeError, match="cannot write a object"):
        encode(object())


def test_skipped_fields_and_derived_extras():
    @dataclass
    class Run(Result):
        label: str
        model: object = field(default=None, metadata=SKIP)

    assert Run("a", model=torch.nn.Linear(1, 1)).to_dict() == {"label": "a"}
    d = examples()[3].to_dict()
    assert d["independent"] is False  # a derived property, written for readers ...
    assert BatchIndependenceResult.from_dict(d).label == "b"  # ... and ignored when read


def test_decode_follows_annotations():
    assert decode(dict[float, float], {"0.5": "NaN"}).keys() == {0.5}
    assert decode(tuple[int, ...], [1, 2]) == (1, 2)
    assert decode(float | None, None) is None and decode(float | None, "-Infinity") == -INF
    assert decode(list[list[float]], [["NaN", 1]])[0][1] == 1.0
    with pytest.raises(ValueError, match="expected an integer"):
        decode(int, 1.5)
