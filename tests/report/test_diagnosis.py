"""Each diagnosis on hand-made result objects: it fires exactly when its rule holds."""

import math

import pytest

from signalprop.report import diagnosis as dg
from signalprop.results import (
    BatchIndependenceResult,
    BlockStats,
    GradBlockStats,
    GradSPPResult,
    SPPResult,
)


def _spp(sq_means, variances, res_var=None, nonfinite=None):
    n = len(variances)
    return SPPResult("toy", [BlockStats(f"b{i}", i, sq_means[i], variances[i],
                                        None if res_var is None else res_var,
                                        0 if nonfinite is None else nonfinite[i])
                             for i in range(n)])


def _grad(variances, sq_means=None, nonfinite=None):
    return GradSPPResult("g", [GradBlockStats(f"b{i}", i, 0.0 if sq_means is None else sq_means[i],
                                              v, None, 0, 0 if nonfinite is None else nonfinite[i])
                               for i, v in enumerate(variances)])


# ---- mean shift: avg_sq_mean > MEAN_SHIFT_RATIO * avg_var from a block to the end ---------
def test_mean_shift_fires_from_first_block_of_the_final_run():
    # b1 exceeds, b2 does not, b3 and b4 exceed: the run that lasts starts at b3
    res = _spp([0.0, 2.0, 0.5, 1.5, 9.0], [1.0, 1.0, 1.0, 1.0, 2.0])
    d = dg.diagnose_mean_shift(res)
    assert d.kind == "mean_shift" and d.block == "b3"
    assert "1.5 > 1" in d.message and d.fix_code == dg.FIX_NORMFREE
    assert "MEAN_SHIFT_RATIO" in d.threshold


def test_mean_shift_does_not_fire_at_equality_or_when_the_last_block_recovers():
    assert dg.diagnose_mean_shift(_spp([0.0, 1.0, 1.0], [1.0, 1.0, 1.0])) is None  # equal
    assert dg.diagnose_mean_shift(_spp([0.0, 5.0, 0.9], [1.0, 1.0, 1.0])) is None  # recovers


def test_mean_shift_ignores_nonfinite_blocks():
    res = _spp([0.0, 3.0, math.nan], [1.0, 1.0, math.nan], nonfinite=[0, 0, 7])
    assert dg.diagnose_mean_shift(res).block == "b1"


# ---- variance growth: avg_var > VARIANCE_GROWTH_LIMIT x the first block's ----------------
@pytest.mark.parametrize("variances,block", [
    ([1.0, 2.0, 4.0, 4.01, 8.0], "b3"),   # 4.01 > 4 x 1.0 first
    ([0.5, 1.0, 2.0, 2.5], "b3"),         # 2.5 > 2.0 = 4 x 0.5
    ([1.0, 2.0, 4.0, 3.0], None),         # 4.0 is not > 4.0
    ([1.0, 0.5, 0.25], None),             # shrinking is not growth
])
def test_variance_growth(variances, block):
    d = dg.diagnose_variance_growth(_spp([0.0] * len(variances), variances, res_var=1.0))
    assert (d.block if d else None) == block
    if d:
        assert d.kind == "variance_growth" and "NF scaling" in d.message
        assert d.fix_code == dg.FIX_NORMFREE


def test_variance_growth_in_a_plain_network_prescribes_the_critical_init():
    d = dg.diagnose_variance_growth(_spp([0.0] * 3, [1.0, 2.0, 8.0]), activation="tanh")
    assert d.fix_code == 'sp.nn.init.critical_(model, "tanh")'
    assert "critical initialization" in d.message


# ---- gradients: ratio |g_first|^2 / |g_last|^2 and chi = ratio ** (1 / (n - 1)) --------------
def test_gradient_norms_multiply_by_elements_per_example():
    g = _grad([1.0, 2.0], sq_means=[0.5, 0.0])
    assert dg.gradient_norms(g, [10, 3]) == [15.0, 6.0]
    assert dg.gradient_norms(g) == [1.5, 2.0]


def test_exploding_gradients_by_hand():
    # norms 27, 9, 3, 1 from the first block to the last: ratio 27, chi = 27 ** (1/3) = 3
    d = dg.diagnose_gradients(_grad([27.0, 9.0, 3.0, 1.0]), activation="relu",
                              critical_sigma_w2=2.0, theory_chi_1=3.0)
    assert d.kind == "exploding_gradients"
    assert "factor 27" in d.message and "about 3 per block" in d.message
    assert "sigma_w^2 = 2" in d.message and "chi_1 of this initialization is 3" in d.message
    assert d.block == "b0"  # going back from the output: 3, 9 are within 10x of 1; 27 is not
    assert d.fix_code == 'sp.nn.init.critical_(model, "relu")'


def test_vanishing_gradients_by_hand_and_the_residual_fix():
    # norms 1e-3 .. 1: ratio 1e-3, chi = 0.1 per block
    d = dg.diagnose_gradients(_grad([1e-3, 1e-2, 1e-1, 1.0]), residual=True, activation="relu")
    # going back: 0.1 is not below 1/10, 0.01 is: b1 is where the limit is crossed
    assert d.kind == "vanishing_gradients" and d.block == "b1"
    assert d.fix_code == dg.FIX_NORMFREE


@pytest.mark.parametrize("norms", [
    [9.0, 1.0],                        # chi 9 but ratio 9 < 10
    [11.0] + [1.0] * 10,               # ratio 11 but chi = 11 ** (1/10) = 1.27 < 1.5
    [1.0, 1.0, 1.0],
])
def test_gradients_below_either_limit_do_not_fire(norms):
    assert dg.diagnose_gradients(_grad(norms)) is None


def test_gradients_skip_nonfinite_blocks():
    g = _grad([100.0, 10.0, 1.0, math.nan], nonfinite=[0, 0, 0, 4])
    d = dg.diagnose_gradients(g)
    assert d.kind == "exploding_gradients" and "factor 100" in d.message


# ---- non-finite values ------------------------------------------------------------------
def test_nonfinite_forward_first_block_and_gradient_nearest_output():
    res = _spp([0.0, 0.0, math.nan], [1.0, 1.0, math.nan], nonfinite=[0, 0, 12])
    d = dg.diagnose_nonfinite(res)
    assert d.block == "b2" and "12 NaN/Inf values in the forward" in d.message
    clean = _spp([0.0] * 3, [1.0] * 3)
    assert dg.diagnose_nonfinite(clean) is None
    g = _grad([math.nan, math.nan, 1.0], nonfinite=[3, 5, 0])
    d = dg.diagnose_nonfinite(clean, g, fix_code="X")
    assert d.block == "b1" and "gradient" in d.message and d.fix_code == "X"


# ---- batch dependence -------------------------------------------------------------------
def _ind(train, eval_, where="stages.0.norm1", kind="BatchNorm2d"):
    return BatchIndependenceResult({"train": train, "eval": eval_}, {"train": 1.0, "eval": 1.0},
                                   {"train": where if train > 1e-5 else None, "eval": None},
                                   {"train": None, "eval": None}, 1e-5, 0, 8,
                                   meta={"first_leak_type": {"train": kind, "eval": None}})


def test_batch_dependence_names_the_module_and_its_type():
    d = dg.diagnose_batch_dependence(_ind(0.02, 0.0))
    assert d.title == "batch dependence through BatchNorm2d"
    assert d.block == "stages.0.norm1" and "train mode 0.02" in d.message
    assert dg.diagnose_batch_dependence(_ind(1e-5, 0.0)) is None  # at the tolerance: independent


def test_diagnose_collects_in_order():
    res = _spp([0.0, 5.0, 50.0], [1.0, 2.0, 20.0], res_var=1.0)
    kinds = [d.kind for d in dg.diagnose(res, _grad([100.0, 10.0, 1.0]), _ind(0.1, 0.0))]
    assert kinds == ["mean_shift", "variance_growth", "exploding_gradients", "batch_dependence"]
    assert str(dg.diagnose(res)[0]).startswith("mean shift from block 'b1'")
