"""AGC and param_groups on the styled models and their normalizer-free conversions: the
classifier is found from the graph, and a few clipped steps train the converted models."""

import pytest
import torch
import torch.nn.functional as F
from styled_models import BasicBlock, HFEncoderModel, TVResNet

import signalprop as sp

CASES = {
    "torchvision-style": (lambda: TVResNet(BasicBlock, [1, 1, 1]), (16, 3, 16, 16), "fc"),
    "huggingface-style": (lambda: HFEncoderModel(layers=2), (16, 10, 12), "classifier"),
    "resnetv2": (lambda: sp.models.resnetv2([1, 1], norm="bn", stem="cifar", width=0.25,
                                            num_classes=3), (16, 3, 16, 16), "fc"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_agc_trains_the_converted_model_and_never_clips_its_classifier(case):
    build, shape, head = CASES[case]
    torch.manual_seed(0)
    x, y = torch.randn(*shape), torch.randint(0, 3, (shape[0],))
    model, _ = sp.convert.to_normfree(build(), skipinit_init=0.2, example_input=x)
    groups = sp.optim.param_groups(model, lr=0.05, weight_decay=1e-4)
    agc = sp.optim.AGC(torch.optim.SGD(groups, lr=0.05, momentum=0.9), model, clipping=0.01)
    losses = []
    for _ in range(8):
        agc.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        agc.step()
        losses.append(loss.item())
    assert agc.excluded == [f"{head}.bias", f"{head}.weight"]
    assert losses[-1] < losses[0]
    assert sp.batch_independence(model, x[:4]).independent
