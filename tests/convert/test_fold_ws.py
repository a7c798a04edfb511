"""fold_ws: plain layers only, outputs equal to the original within 1e-5, scalars folded,
torch.export of the folded model."""

import operator

import pytest
import torch
import torch.nn as nn
from styled_models import BasicBlock, HFEncoderModel, TVResNet

import signalprop as sp
from signalprop.convert import fold_ws, to_normfree
from signalprop.nn import ScaledStdConv1d, ScaledStdConv2d, WSLinear

WS = (ScaledStdConv1d, ScaledStdConv2d, WSLinear)
PLAIN_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _nf_resnet(activation):
    torch.manual_seed(0)
    m = sp.models.resnetv2([2, 2], norm="nf", activation=activation, stem="cifar", width=0.25,
                           skipinit=True, skipinit_init=0.7)
    with torch.no_grad():  # trained-looking gains and biases, so every fold matters
        for mod in m.modules():
            if isinstance(mod, ScaledStdConv2d):
                mod.gain.uniform_(0.5, 1.5)
                if mod.bias is not None:  # the stem conv has none
                    mod.bias.normal_(0, 0.1)
    return m, torch.randn(4, 3, 16, 16)


def _converted_tv():
    torch.manual_seed(0)
    nf, _ = to_normfree(TVResNet(BasicBlock, [2, 2, 2]), skipinit_init=0.5,
                        example_input=torch.randn(4, 3, 32, 32))
    return nf, torch.randn(4, 3, 32, 32)


def _converted_hf():
    torch.manual_seed(0)
    nf, _ = to_normfree(HFEncoderModel(layers=3), skipinit_init=0.5,
                        example_input=torch.randn(4, 10, 12))
    return nf, torch.randn(4, 10, 12)


def _gn_ws():
    torch.manual_seed(0)
    return (sp.models.resnetv2([1, 1], norm="gn_ws", stem="cifar", width=0.25),
            torch.randn(4, 3, 16, 16))


def _mlp():
    torch.manual_seed(0)
    return (nn.Sequential(WSLinear(6, 16, gamma=1.3), nn.GELU(), WSLinear(16, 4)),
            torch.randn(5, 6))


CASES = {
    "nf relu": lambda: _nf_resnet("relu"),
    "nf silu": lambda: _nf_resnet("silu"),
    "converted torchvision-style": _converted_tv,
    "converted huggingface-style": _converted_hf,
    "gn_ws": _gn_ws,
    "ws mlp": _mlp,
}


@pytest.mark.parametrize("case", list(CASES))
def test_folded_model_has_only_plain_layers_and_equal_outputs(case):
    model, x = CASES[case]()
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_ws(model)
    assert not any(isinstance(m, WS) for m in folded.modules())
    weighted = [m for m in folded.modules() if isinstance(m, PLAIN_WEIGHTED)]
    assert weighted and all(type(m) in PLAIN_WEIGHTED for m in weighted)
    assert not any(p.requires_grad for p in folded.parameters())
    with torch.no_grad():
        expected, got = model(x), folded(x)
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-5 * max(1.0, scale)
    for k, v in model.state_dict().items():  # the original is untouched
        assert torch.equal(v, state[k]), k


def test_scalar_multiplications_are_folded_into_the_weights():
    # NF-ResNet with relu: gamma, 1/beta, SkipInit gains and alpha all fold away, so the
    # graph is what a plain conv network runs (no multiplication left)
    model, _ = _nf_resnet("relu")
    folded = fold_ws(model.eval())
    muls = [n for n in folded.graph.nodes if n.target in (operator.mul, torch.mul)]
    assert muls == []
    adds = [n for n in folded.graph.nodes if n.target is torch.add]
    assert adds and all(not n.kwargs for n in adds)  # alpha folded too
    # silu is not homogeneous: x * (1/beta) must stay before it, once per block with beta != 1
    silu, _ = _nf_resnet("silu")
    folded = fold_ws(silu.eval())
    muls = [n for n in folded.graph.nodes if n.target in (operator.mul, torch.mul)]
    betas = [b for _, b in silu.signal_blocks()[1:] if b.input_scale != 1.0]
    assert len(muls) == len(betas) == 3


@pytest.mark.parametrize("case", ["nf relu", "converted huggingface-style"])
def test_folded_model_exports_with_torch_export(case):
    model, x = CASES[case]()
    folded = fold_ws(model.eval())
    exported = torch.export.export(folded, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-5, atol=1e-5)


def test_untraceable_model_is_still_folded_layer_by_layer():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ScaledStdConv2d(3, 4, 3, gamma=1.7)
            self.b = ScaledStdConv2d(3, 4, 3)

        def forward(self, x):
            return self.a(x) if x.mean() > 0 else self.b(x)

    model = Branchy()
    x = torch.randn(2, 3, 8, 8)
    folded = fold_ws(model)
    assert type(folded.a) is nn.Conv2d and type(folded.b) is nn.Conv2d
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(folded(-x), model(-x), rtol=1e-5, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="model must be an nn.Module, got str"):
        fold_ws("resnet")
