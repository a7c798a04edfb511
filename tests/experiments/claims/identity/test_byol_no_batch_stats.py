"""byol-no-batch-stats: smoke end to end, the encoders, and decide on the claimed effect
at realistic noise, on nulls (GN+WS collapsed, BYOL learning nothing, no collapse)."""

from pathlib import Path

import torch

import signalprop as sp
from signalprop.experiments.claims.identity._models import resnet1d_encoder
from signalprop.experiments.claims.identity.byol_no_batch_stats import decide


def _m(gn_acc, none_std=(0.01, 0.02, 0.015), bn_acc=(0.83, 0.84, 0.82), independent=True):
    final = {"bn": {"test_acc": list(bn_acc), "test_std_ratio": [0.7, 0.8, 0.75]},
             "gn_ws": {"test_acc": list(gn_acc), "test_std_ratio": [0.6, 0.5, 0.7]},
             "none": {"test_acc": [0.62, 0.66, 0.6], "test_std_ratio": list(none_std)}}
    init = {v: {"test_acc": [0.75, 0.76, 0.74], "test_std_ratio": [0.2] * 3} for v in final}
    return {"final": final, "initial": init,
            "batch_independence": {"gn_ws": {"independent": independent},
                                   "bn": {"independent": False}}}


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("byol-no-batch-stats", tmp_path)
    m = res.measurements
    assert m["batch_independence"]["gn_ws"]["independent"]
    assert not m["batch_independence"]["bn"]["independent"]
    assert set(m["final"]) == {"bn", "gn_ws", "none"}


def test_decide_pass_and_fail():
    assert decide(_m([0.80, 0.82, 0.81])).reproduced
    out = decide(_m([0.75, 0.77, 0.76]))  # GN+WS collapsed to its initial probe
    assert not out.reproduced and not out.details["learned"]["gn_ws"]
    assert not out.details["within_margin"]
    out = decide(_m([0.80, 0.82, 0.81], bn_acc=(0.76, 0.75, 0.77)))  # nothing learned
    assert not out.reproduced and not out.details["learned"]["bn"]
    out = decide(_m([0.80, 0.82, 0.81], none_std=(0.3, 0.05, 0.02)))  # one seed not collapsed
    assert not out.reproduced and not out.details["none_collapsed"]
    assert not decide(_m([0.80, 0.82, 0.81], independent=False)).reproduced


def test_encoders_gn_ws_is_batch_independent_and_bn_is_not():
    x = torch.randn(12, 40)
    gn = resnet1d_encoder(2, 16, "gn_ws")
    assert sp.batch_independence(gn, x).independent
    assert not sp.batch_independence(resnet1d_encoder(2, 16, "bn"), x).independent
    assert resnet1d_encoder(2, 16, "none")(x).shape == (12, 16)
