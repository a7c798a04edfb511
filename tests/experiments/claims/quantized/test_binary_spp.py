"""binary-spp: decide() fails on the no-effect null and passes on the predicted gains at
realistic noise; the gain fit; smoke run."""

import math
from pathlib import Path

import pytest
import torch

from signalprop.experiments.claims.quantized import binary_spp
from tests.experiments.claims.quantized._noise import normal


def _spp(gain_factor, res_shift, sd=0.01):
    pred = {"binary mean_abs": 2 / math.pi, "ternary mean_abs": 0.808,
            "4-bit mean_abs": 0.971, "binary rms": 1.0}
    gains = {k: [(p * gain_factor if k != "binary rms" else 1.0) * (1 + normal(0, sd))
                 for _ in range(4)] for k, p in pred.items()}
    return {"mlp": {"gain": gains, "predicted": pred},
            "resnet": {"log_ratio": {"binary mean_abs": list(normal(-1.2 + res_shift, 0.1, 4)),
                                     "binary rms": list(normal(res_shift, 0.1, 4))},
                       "predicted_log_ratio": {"binary mean_abs": -1.2, "binary rms": 0.0}}}


def test_binary_spp_passes_the_claimed_effect():
    v = binary_spp.decide(_spp(1.0, 0.0))
    assert v.reproduced, v.effect


@pytest.mark.parametrize("gain_factor, res_shift", [(math.pi / 2, 0.0), (1.0, 1.2)])
def test_binary_spp_fails_nulls(gain_factor, res_shift):
    # null: quantization leaves the variance alone (gain 1, ResNet ratio 1)
    assert not binary_spp.decide(_spp(gain_factor, res_shift)).reproduced


def test_fitted_gain_is_the_geometric_rate():
    assert binary_spp._fitted_gain([2.0 * 0.6 ** k for k in range(6)]) == pytest.approx(0.6)


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path: Path, smoke_run) -> None:
    smoke_run("binary-spp", tmp_path)


def test_the_resnet_pair_holds_the_same_float_weights():
    common = {"norm": "none", "stem": "cifar", "width": 0.25, "num_classes": 10}
    fnet, qnet = binary_spp.paired_resnets([1, 1], "mean_abs", 3, common)
    f, q = dict(fnet.named_parameters()), dict(qnet.named_parameters())
    assert f.keys() == q.keys()
    assert all(torch.equal(f[k], q[k]) for k in f)
