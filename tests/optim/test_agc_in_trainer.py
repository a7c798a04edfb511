"""The trainer's optimizer factory wraps its optimizer in signalprop.optim.AGC."""

import torch
import torch.nn.functional as F

import signalprop as sp
from signalprop.optim import AGC
from signalprop.train import TrainConfig, build_optimizer


def test_build_optimizer_wraps_in_agc_that_clips_all_but_the_classifier():
    torch.manual_seed(0)
    model = sp.models.resnetv2([1], norm="nf", stem="cifar", width=0.25, num_classes=3)
    stepper, base = build_optimizer(TrainConfig(steps=1, agc_clipping=1e-4, lr=0.1), model)
    assert isinstance(stepper, AGC) and stepper.optimizer is base and stepper.clipping == 1e-4
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 3, (4,))
    F.cross_entropy(model(x), y).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    stepper.step()
    assert stepper.excluded == ["fc.bias", "fc.weight"]
    clipped = [n for n, p in model.named_parameters() if not torch.equal(p.grad, grads[n])]
    assert clipped and not any(n.startswith("fc.") for n in clipped)
