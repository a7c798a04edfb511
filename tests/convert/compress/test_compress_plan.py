"""depth_compress end to end on small networks: the plan is the DP optimum of its tables,
its pieces agree with each other, the compressed network equals the linearized one, the
latency cache is used, and bad input is refused."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop as sp
from signalprop.convert.compress import _latency
from signalprop.convert.compress._chain import build_chain
from signalprop.convert.compress._importance import blocks
from signalprop.results import CompressionPlan, LatencyTable


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = sp.models.mobilenetv2(in_channels=1, padding_mode="circular",
                                stages=((1, 8, 1, 1), (2, 8, 2, 1)), stem=8, head=16).eval()
    x = torch.randn(16, 1, 8, 8)
    table = sp.convert.latency_table(net, x, repeats=1, cache_dir=False)
    return net, x, table


def _synthetic(table: LatencyTable) -> LatencyTable:
    """Deterministic latencies: 1 per convolution, merging k of them costs 0.6 k + 0.4."""
    segs = {}
    for key in table.segments:
        i, j = (int(p) for p in key.split(":"))
        segs[key] = 1.0 if j == i + 1 else 0.6 * (j - i) + 0.4
    acts = {k: 0.1 for k in table.activations}
    total = sum(segs[f"{i}:{i + 1}"] for i in range(len(table.convs))) + sum(acts.values())
    return LatencyTable(table.convs, segs, acts, rest=0.5, original=total + 0.5)


def _importance(chain):
    """-0.01 (activations dropped in the block)^2: superadditive, zero when none."""
    return {f"{a}:{b}": -0.01 * sum(chain.droppable(k) for k in range(a + 1, b)) ** 2
            for a, b in blocks(chain)}


def test_the_plan_is_consistent_and_exact(setup):
    net, x, table = setup
    synth = _synthetic(table)
    chain = build_chain(net.eval(), x, padding="exact", what="t")
    imp = _importance(chain)
    plan = sp.convert.depth_compress(net, 0.7, example_input=x, importance=imp,
                                     latency=synth, verify=False)
    assert plan.predicted_ratio <= 0.7 + 1e-9
    assert set(plan.kept) <= set(plan.boundaries)
    assert sum(len(s) for s in plan.segments) == len(plan.convs)
    dropped_positions = [k for k in plan.droppable if k not in plan.kept]
    assert sorted(plan.dropped) == sorted(a for k in dropped_positions
                                          for a in plan.activations[k])
    cuts = [0, *plan.boundaries, len(plan.convs)]
    parts = sum(synth.seconds(i, j) for i, j in zip(cuts[:-1], cuts[1:]))
    assert plan.predicted_seconds == pytest.approx(synth.rest + parts + 0.1 * len(plan.kept))
    kept = [0, *plan.kept, len(plan.convs)]
    assert plan.importance == pytest.approx(sum(imp[f"{a}:{b}"] for a, b in zip(kept[:-1],
                                                                                kept[1:])))
    small, linear = plan.apply(net), plan.apply(net, merge=False)
    assert sum(isinstance(m, nn.Conv2d) for m in small.modules()) == plan.merged_depth
    torch.testing.assert_close(small(x), linear(x), atol=1e-5, rtol=1e-4)
    again = CompressionPlan.from_json(plan.to_json())
    assert again.table.segments == synth.segments and again.segments == plan.segments
    torch.testing.assert_close(again.apply(linear)(x), small(x))  # merge after fine-tuning


def test_a_looser_budget_keeps_more_importance(setup):
    net, x, table = setup
    synth = _synthetic(table)
    chain = build_chain(net.eval(), x, padding="exact", what="t")
    imp = _importance(chain)
    values = [sp.convert.depth_compress(net, b, example_input=x, importance=imp,
                                        latency=synth, verify=False).importance
              for b in (0.65, 0.8, 1.1)]
    assert values[0] <= values[1] <= values[2] == 0.0
    with pytest.raises(ValueError, match="the fastest plan takes 0.62"):
        sp.convert.depth_compress(net, 0.3, example_input=x, importance=imp, latency=synth)


def test_measured_latency_and_the_score_function(setup):
    net, x, table = setup
    y = torch.randint(0, 10, (16,))
    calls = []

    def score(m):
        calls.append(1)
        return -F.cross_entropy(m(x), y).item()

    chain = build_chain(net.eval(), x, padding="exact", what="t")
    plan = sp.convert.depth_compress(net, 0.8, example_input=x, importance=score,
                                     latency=table, repeats=3)
    assert len(calls) == 1 + sum(1 for a, b in blocks(chain) if any(
        chain.droppable(k) for k in range(a + 1, b)))
    assert plan.measured_seconds > 0 and 0 < plan.measured_ratio < 2
    assert plan.table is table and plan.label == "ConvNet"
    assert "convolutions" in str(plan)


def test_latency_cache_is_reused(tmp_path, monkeypatch):
    items = {"c": (nn.Conv2d(2, 2, 3), (1, 2, 6, 6)), "r": (nn.ReLU(), (1, 2, 6, 6))}
    cache = _latency.LatencyCache(tmp_path / "m.json")
    first = _latency.time_modules(items, repeats=2, threads=1, clock="cpu",
                                  dtype=torch.float32, cache=cache)
    assert set(first) == {"c", "r"} and all(v > 0 for v in first.values())

    def fail(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(_latency, "interleaved", fail)
    again = _latency.time_modules(items, repeats=2, threads=1, clock="cpu",
                                  dtype=torch.float32,
                                  cache=_latency.LatencyCache(tmp_path / "m.json"))
    assert again == first
    keys = {_latency.module_key(nn.Conv2d(2, 2, 3), s, torch.float32, t, "cpu")
            for s in ((1, 2, 6, 6), (2, 2, 6, 6)) for t in (1, 2)}
    assert len(keys) == 4
    monkeypatch.setenv("SIGNALPROP_CACHE", str(tmp_path))
    assert _latency.default_cache_dir() == tmp_path


def test_bad_arguments(setup):
    net, x, table = setup
    imp = {}
    with pytest.raises(ValueError, match="budget must be"):
        sp.convert.depth_compress(net, -1, example_input=x, importance=imp, latency=table)
    with pytest.raises(ValueError, match="importance table lacks"):
        sp.convert.depth_compress(net, 0.7, example_input=x, importance=imp, latency=table)
    with pytest.raises(ValueError, match="latency must be"):
        sp.convert.depth_compress(net, 0.7, example_input=x, importance=imp, latency="tab")
    with pytest.raises(ValueError, match="repeats must be"):
        sp.convert.latency_table(net, x, repeats=0)
    with pytest.raises(ValueError, match="score is nan"):
        sp.convert.depth_compress(net, 0.7, example_input=x, importance=lambda m: math.nan,
                                  latency=table)
