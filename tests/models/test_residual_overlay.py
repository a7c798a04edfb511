"""Predicted residual schedules (theory.residual_schedule) against measured SPPs.

Setting: ResNetV2-50 at width 1, ImageNet stem, 16 Gaussian-noise images. The prediction
takes the measured stem statistics as input and models zero padding (``spatial``). Target
(issue 3): every block's average channel variance within +-25%.

Two documented limits of the mean-field model decide the settings:
* ``none``: one network's statistics scatter by 20-40% around the expectation over weights
  that the theory predicts (no normalization to tame them), so the measurement is the
  average over 4 networks (measured deviation of that average: <= 14% at 64x64).
* ``nf``: on 2x2 maps (last stage at 64x64 inputs) Scaled WS removes ~20% of the variance
  that the model keeps (components shared by all channels); at 128x128 inputs (4x4 maps)
  the deviation is <= 11%, which is the setting used here.
"""

import numpy as np
import pytest
import torch

from signalprop import measure, models, theory

DEPTHS = [3, 4, 6, 3]


@pytest.mark.parametrize("norm,pixels,networks", [("bn", 128, 1), ("nf", 128, 1),
                                                  ("none", 64, 4)])
def test_predicted_schedule_overlays_the_measured_spp(norm, pixels, networks):
    runs = []
    for seed in range(networks):
        torch.manual_seed(seed)
        model = models.resnetv2(DEPTHS, norm=norm, stem="imagenet", num_classes=10)
        runs.append(measure.spp(model, torch.randn(16, 3, pixels, pixels)))
    names = runs[0].names
    var = np.mean([r.avg_var for r in runs], axis=0)
    stem_sq = float(np.mean([r.records[0].avg_sq_mean for r in runs]))
    pred = theory.residual_schedule(norm, DEPTHS, stem_var=float(var[0]),
                                    stem_sq_mean=stem_sq, spatial=pixels // 4)
    assert pred.names == names and names[0] == "stem"
    ratio = np.array(pred.avg_var[1:]) / var[1:]
    assert np.all(np.abs(ratio - 1) <= 0.25), dict(zip(names[1:], ratio.round(3), strict=True))
