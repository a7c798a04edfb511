"""exp-lr-equivalence: smoke end to end (it reproduces even at smoke size: the equivalence
is exact); decide on the claimed effect, on a null (no equivalence) and on a trivial one."""

from pathlib import Path

from signalprop.experiments.claims.identity.exp_lr_equivalence import EQUAL_TOL, decide


def _m(exp, fixed, zero=1.0, moved=2.0):
    seed = {"mismatch": {"exp": exp, "fixed_no_wd": fixed, "exp_zero_buffer": [zero] * len(exp)},
            "function_change": moved}
    return {"setup": {"steps": [20 * (i + 1) for i in range(len(exp))]},
            "seeds": {"0": seed, "1": seed}}


def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    res = smoke_run("exp-lr-equivalence", tmp_path)
    assert res.reproduced  # exact up to rounding at any size
    assert res.measurements["decision"]["max_mismatch"] < EQUAL_TOL


def test_decide_passes_on_equivalence_and_fails_on_a_null_and_without_weight_decay_effect():
    assert decide(_m([1e-13, 5e-13, 2e-12], [0.3, 0.9, 1.8])).reproduced
    # null: the exp run drifts from the weight-decay run (as with zero initial momentum)
    out = decide(_m([1e-13, 1e-6, 0.2], [0.3, 0.9, 1.8]))
    assert not out.reproduced and not out.details["equal"]
    # weight decay changed nothing: equal, but so is the control -- no evidence
    out = decide(_m([1e-13, 1e-13, 1e-13], [1e-12, 1e-12, 1e-12]))
    assert not out.reproduced and not out.details["control_differs"]
    assert not decide(_m([float("nan")] * 3, [0.3, 0.9, 1.8])).reproduced
