"""The newer layers and conversions on models nobody here wrote: OrthoConv2d as a drop-in
for HuggingFace convolutions, quantize_modules and QuantizedTraining on GPT-2 (tied head,
Conv1D), nn.TransformerEncoder and shared modules, SelfAttention / LinearRNN2d / quantized
layers under the older measurements, merge_convs and depth-compression plans on an HF
ResNet and on plain CNNs with BatchNorm and dropout in train mode. Each result is checked
against an independent computation (the unmerged network, a per-example gradient loop,
the dense operator) or refused with a message naming the module.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.convert import ConversionError, MergeError
from signalprop.optim import QuantizationWarning

from .zoo import CASES, loss, output_tensor

pytest.importorskip("transformers")

BY_NAME = {c.name: c for c in CASES}


def orthogonalized(model):
    """``model`` with every nn.Conv2d replaced by an OrthoConv2d of the same geometry."""
    for parent in list(model.modules()):
        for name, c in list(parent.named_children()):
            if type(c) is nn.Conv2d:
                setattr(parent, name, sp.nn.OrthoConv2d(
                    c.in_channels, c.out_channels, c.kernel_size, stride=c.stride,
                    dilation=c.dilation, groups=c.groups, bias=c.bias is not None))
    return model


# ---- OrthoConv2d as a drop-in -------------------------------------------------------------


@pytest.mark.parametrize("name", ["convnext", "vit"])
def test_ortho_conv_replaces_hf_convolutions(name):
    case = BY_NAME[name]
    x = case.x()
    model = case.model()
    y0 = output_tensor(model(x))
    ortho = orthogonalized(copy.deepcopy(model)).eval()
    y = output_tensor(ortho(x))
    assert y.shape == y0.shape and bool(torch.isfinite(y).all())
    spectra = sp.conv_spectra(ortho, x)
    assert spectra.records and all(r.method == "fft" for r in spectra.records)
    for r in spectra.records:
        assert r.sigma_max == pytest.approx(1.0, abs=1e-5)
        assert r.sigma_min == pytest.approx(1.0, abs=1e-5)


def test_ortho_conv_refuses_the_resnet_shortcut_with_the_theorem():
    conv = BY_NAME["resnet"].model().encoder.stages[1].layers[0].shortcut.convolution
    with pytest.raises(ValueError, match="no orthogonal convolution exists for in_channels=8, "
                                         "out_channels=16, kernel_size=\\(1, 1\\), stride"):
        sp.nn.OrthoConv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                          stride=conv.stride)


def test_ortho_conv_takes_what_nn_conv2d_takes():
    layer = sp.nn.OrthoConv2d(3, 4, 3)
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(layer(x[0]), layer(x)[0], atol=1e-6)  # unbatched (C, H, W)
    assert layer(x[:0]).shape == (0, 4, 6, 6)  # was a raw MKL FFT error
    with pytest.raises(ValueError, match="padding_mode='circular'"):
        sp.nn.OrthoConv2d(3, 4, 3, padding_mode="zeros")


def test_delta_orthogonal_init_of_a_convnext_depthwise_conv():
    conv = BY_NAME["convnext"].model().encoder.stages[0].layers[0].dwconv  # (8, 1, 7, 7)
    with torch.no_grad():
        sp.nn.delta_orthogonal_(conv.weight)  # as a 1 -> 8 kernel: not an isometry
    r = sp.conv_spectrum(conv, (8, 6, 6))
    assert r.sigma_min < 0.9  # why groups= exists: the shape cannot tell
    with torch.no_grad():
        sp.nn.delta_orthogonal_(conv.weight, groups=conv.groups)
    r = sp.conv_spectrum(conv, (8, 6, 6))
    assert r.sigma_max == pytest.approx(1.0) and r.sigma_min == pytest.approx(1.0)


# ---- quantized layers on foreign models ---------------------------------------------------


def test_quantize_modules_keeps_gpt2_tied_and_names_its_conv1d_layers():
    model = BY_NAME["gpt2"].model()
    with pytest.warns(QuantizationWarning, match="'transformer.h.0.attn.c_attn' \\(Conv1D\\)"):
        sp.nn.quantize_modules(model)
    # the LM head was copied, untying it from the token embedding
    assert model.lm_head.weight is model.transformer.wte.weight
    with pytest.raises(ValueError, match="'lm_head' is also the parameter of "
                                         "'transformer.wte' \\(tied weights\\)"):
        sp.optim.QuantizedTraining(torch.optim.SGD(model.parameters(), 0.1), model, "sr")
    sp.optim.QuantizedTraining(torch.optim.SGD(model.parameters(), 0.1), model, "bc")


def test_quantize_modules_names_attention_left_in_float():
    model = BY_NAME["pre_ln"].model()
    with pytest.warns(QuantizationWarning, match="'layers.0.self_attn' \\(MultiheadAttention\\)"):
        sp.nn.quantize_modules(model)
    assert [n for n, _ in sp.nn.quantized_layers(model)] == [
        f"layers.{i}.linear{j}" for i in range(2) for j in (1, 2)]


def test_quantize_modules_swaps_a_shared_module_everywhere():
    shared = nn.Linear(4, 4)
    net = nn.Sequential(shared, nn.ReLU(), shared)  # one module registered twice
    sp.nn.quantize_modules(net)
    assert isinstance(net[0], sp.nn.QuantLinear) and net[2] is net[0]  # was: net[2] float
    x = torch.randn(3, 4)
    q = net[0]
    ref = nn.functional.linear(torch.relu(nn.functional.linear(x, q.quantized_weight(), q.bias)),
                               q.quantized_weight(), q.bias)
    assert torch.allclose(net(x), ref)


# ---- the new layers under the older measurements ------------------------------------------


class AttentionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = sp.nn.SelfAttention(8, 2, normalize="none", norm="layer")
        self.b = sp.nn.SelfAttention(8, 2, norm="none", norm_first=True)

    def forward(self, x):
        return self.b(self.a(x))


class GridNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = sp.nn.QuantConv2d(2, 3, 3, padding=1, estimator="reste")
        self.rnn = sp.nn.LinearRNN2d(3, "P")
        self.ortho = sp.nn.OrthoConv2d(3, 3, 3)

    def forward(self, x):
        return self.ortho(self.rnn(self.conv(x)))


@pytest.mark.parametrize("net,x", [(AttentionNet, (4, 5, 8)), (GridNet, (4, 2, 4, 4))])
def test_gram_of_the_new_layers_against_a_per_example_loop(net, x):
    torch.manual_seed(0)
    model, x = net().double(), torch.randn(*x, dtype=torch.float64)
    params = list(model.parameters())
    rows = []
    for i in range(len(x)):
        gs = torch.autograd.grad(loss(model(x[i:i + 1])), params)
        rows.append(torch.cat([g.flatten() for g in gs]))
    ref = torch.stack(rows) @ torch.stack(rows).T
    res = sp.gradient_gram(model, x, loss_fn=loss)
    assert float((res.matrix - ref).abs().max() / ref.abs().max()) < 1e-9


def test_self_attention_names_a_bad_input():
    attn = sp.nn.SelfAttention(8, 2)
    with pytest.raises(ValueError, match="takes a batched input \\(N, T, E\\).*unsqueeze"):
        attn(torch.randn(5, 8))  # was: "not enough values to unpack"
    with pytest.raises(ValueError, match="with E = 8, got shape \\(2, 5, 7\\)"):
        attn(torch.randn(2, 5, 7))


# ---- merge_convs and depth-compression plans ----------------------------------------------


def resnet_with_statistics():
    model = BY_NAME["resnet"].model()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model


P = "encoder.stages.0.layers.0.layer."


def test_merge_convs_on_an_hf_resnet():
    model, x = resnet_with_statistics(), torch.randn(2, 3, 16, 16)
    seg = [[P + "0.convolution", P + "1.convolution"]]
    with pytest.raises(ConversionError, match="example_input"):
        sp.convert.merge_convs(model, seg)  # torch.fx cannot trace it
    with pytest.raises(MergeError, match="zeros padding of '" + P.replace(".", "\\.")):
        sp.convert.merge_convs(model, seg, example_input=x)
    merged, report = sp.convert.merge_convs(model, seg, example_input=x, padding="move")
    # the network the merge equals: the activation removed, the inner padding moved
    ref = copy.deepcopy(model).eval()
    ref.get_submodule(P + "0.convolution").padding = (2, 2)
    ref.get_submodule(P + "1.convolution").padding = (0, 0)
    ref.get_submodule(P + "0").activation = nn.Identity()
    with torch.no_grad():
        a, b = merged(x).last_hidden_state, ref(x).last_hidden_state
    assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())


def test_merge_convs_on_a_train_mode_cnn_with_dropout():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),
                        nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                        nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"),
                        nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1)).train()
    x = torch.randn(4, 3, 6, 6)
    cnn(x)  # running statistics of a training step
    merged, _ = sp.convert.merge_convs(cnn, [[0, 4, 7]])
    linear = copy.deepcopy(cnn).eval()
    linear[2], linear[6] = nn.Identity(), nn.Identity()
    with torch.no_grad():
        assert float((merged(x) - linear(x)).abs().max()) < 1e-5
    assert cnn.training  # the model itself is left as it was
    no_stats = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False),
                             nn.ReLU(), nn.Conv2d(4, 2, 1))
    with pytest.raises(MergeError, match="BatchNorm '1' keeps no running statistics"):
        sp.convert.merge_convs(no_stats, [[0, 3]])
    wn = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 1)), nn.ReLU(),
                       nn.Conv2d(4, 2, 1))
    with pytest.raises(MergeError, match="'0' is not a convolution that ran "
                                         "\\(ParametrizedConv2d\\)"):
        sp.convert.merge_convs(wn, [[0, 2]])


def test_a_move_plan_fine_tunes_the_network_it_merges_into():
    # apply(merge=False) kept the inner zero padding: the fine-tuned network then differed
    # from the merged one at the border (2.35 on outputs of size 6 on this model)
    model, x = resnet_with_statistics().eval(), torch.randn(2, 3, 16, 16)
    convs = [P + "0.convolution", P + "1.convolution"]
    plan = sp.results.CompressionPlan(
        "resnet", convs, [[], [P + "0.activation"], []], [1], [], [], [convs],
        [P + "0.activation"], 1.0, 0.0, padding="move", moved=[P + "1.convolution"])
    unmerged = plan.apply(model, merge=False, example_input=x)
    assert unmerged.get_submodule(P + "0.convolution").padding == (2, 2)
    merged = plan.apply(unmerged, example_input=x)
    with torch.no_grad():
        a, b = merged(x).last_hidden_state, unmerged(x).last_hidden_state
    assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())


def test_depth_compress_checks_its_example_input():
    net = sp.models.plain_cnn(depth=2, width=4, in_channels=3, padding_mode="circular")
    x = torch.randn(4, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(sp.measure.NonFiniteError, match="example_input holds 1 NaN"):
        sp.convert.depth_compress(net, 0.7, example_input=x, importance=lambda m: 0.0,
                                  repeats=1, cache_dir=False)
    with pytest.raises(MergeError, match="ran no convolution"):
        sp.convert.depth_compress(BY_NAME["lstm"].model(), 0.7,
                                  example_input=BY_NAME["lstm"].x(),
                                  importance=lambda m: 0.0, repeats=1, cache_dir=False)
