"""merge_convs on whole models: the merged network against the network with those
activations replaced by identities (built independently, by hand), structure read by
torch.fx and by one forward, BatchNorm and Scaled WS folded, residual blocks absorbed, and
every refusal naming the layers."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop as sp
from signalprop.convert import ConversionError, MergeError, merge_convs


def _randomize_bn(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)
    return model.eval()


def _mobilenet(padding_mode="circular"):
    torch.manual_seed(0)
    return _randomize_bn(sp.models.mobilenetv2(in_channels=1, padding_mode=padding_mode)
                         ).double()


def _linearized(net, acts):
    lin = copy.deepcopy(net)
    for name in acts:
        parent, _, child = name.rpartition(".")
        setattr(lin.get_submodule(parent), child, nn.Identity())
    return lin


BLOCK3 = ["features.3.conv.0.0", "features.3.conv.1.0", "features.3.conv.2"]
BLOCK3_ACTS = ["features.3.conv.0.2", "features.3.conv.1.2"]


@pytest.mark.parametrize("example", [False, True])
def test_residual_block_merges_into_one_conv_with_the_shortcut(example):
    net = _mobilenet()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    merged, report = merge_convs(net, [BLOCK3], example_input=x if example else None)
    assert isinstance(merged.features[3], nn.Conv2d)  # the whole block, shortcut included
    assert merged.features[3].kernel_size == (3, 3) and merged.features[3].groups == 1
    torch.testing.assert_close(merged(x), _linearized(net, BLOCK3_ACTS)(x))
    assert report.count("activation -> identity") == 2
    assert report.count("residual addition absorbed") == 1
    assert report.method == ("forward hooks on example_input" if example else "torch.fx graph")
    assert net.features[3].conv[0][2].__class__ is nn.ReLU6  # the original is untouched


def test_segments_across_blocks_and_strides_equal_the_linearized_network():
    net = _mobilenet()
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    segs = [["features.0.0", "features.1.conv.0.0", "features.1.conv.1",
             "features.2.conv.0.0", "features.2.conv.1.0"],
            ["features.2.conv.2", "features.3.conv.0.0", "features.3.conv.1.0",
             "features.3.conv.2", "features.4.conv.0.0", "features.4.conv.1.0",
             "features.4.conv.2"],
            ["features.6.0"]]
    merged, _ = merge_convs(net, segs)
    acts = ["features.0.2", "features.1.conv.0.2", "features.2.conv.0.2", *BLOCK3_ACTS,
            "features.4.conv.0.2", "features.4.conv.1.2"]
    torch.testing.assert_close(merged(x), _linearized(net, acts)(x))
    convs = [m for m in merged.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 16 - 5 - 7 + 2  # segments of 5 and 7 became one each


def test_zero_padding_is_refused_or_moved_with_the_interior_exact():
    net = _mobilenet("zeros")
    with pytest.raises(MergeError, match="cannot move the zeros padding of "
                                         "'features.3.conv.1.0'.*padding='move'"):
        merge_convs(net, [BLOCK3])
    merged, report = merge_convs(net, [BLOCK3], padding="move")
    assert "exact away from the border only" in str(report)
    block = nn.Sequential(net.features[3])
    small = nn.Sequential(merged.features[3])
    x = torch.randn(2, 24, 9, 9, dtype=torch.float64)
    diff = (small(x) - _linearized(block, ["0.conv.0.2", "0.conv.1.2"])(x)).abs()
    assert diff.max() > 1e-4 and diff[..., 1:-1, 1:-1].max() < 1e-10


def test_sequential_indices_batchnorm_and_conv1d():
    torch.manual_seed(0)
    net = _randomize_bn(nn.Sequential(
        nn.Conv1d(2, 6, 3, padding=1, padding_mode="circular"), nn.BatchNorm1d(6), nn.Tanh(),
        nn.Dropout(0.3), nn.Conv1d(6, 6, 3, groups=6, dilation=2), nn.BatchNorm1d(6),
        nn.ReLU(), nn.Conv1d(6, 3, 1))).double()
    merged, _ = merge_convs(net, [[0, 4, 7]])
    assert [type(m) for m in merged] == [nn.Conv1d]
    x = torch.randn(4, 2, 20, dtype=torch.float64)
    torch.testing.assert_close(merged(x), _linearized(net, ["2", "6"])(x))


def test_scaled_ws_convs_are_standardized_first():
    torch.manual_seed(0)
    net = nn.Sequential(sp.nn.ScaledStdConv2d(3, 8, 3, padding=1), sp.nn.GammaAct("relu"),
                        sp.nn.ScaledStdConv2d(8, 4, 1)).eval()
    merged, _ = merge_convs(net, [[0, 2]])
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(merged(x), net[2](net[0](x)), atol=1e-5, rtol=1e-5)


class _Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.act, self.b = nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        if x.sum() > -1e9:  # data-dependent control flow: torch.fx cannot trace it
            x = self.a(x)
        return self.b(self.act(x))


def test_untraceable_models_need_example_input():
    net = _Untraceable().eval()
    with pytest.raises(ConversionError, match="example_input"):
        merge_convs(net, [["a", "b"]])
    x = torch.randn(2, 2, 7, 7)
    merged, _ = merge_convs(net, [["a", "b"]], example_input=x)
    torch.testing.assert_close(merged(x), net.b(net.a(x)), atol=1e-6, rtol=1e-5)


class _FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


class _Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner, self.head = _FunctionalRelu(), nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.head(self.inner(x))


def test_functional_ops_go_with_their_module_or_are_refused():
    with pytest.raises(MergeError, match="'relu' in the model's forward.*called as a function"):
        merge_convs(_FunctionalRelu(), [["a", "b"]])
    net = _Wrapped().eval()
    merged, _ = merge_convs(net, [["inner.a", "inner.b"]])  # the whole module is replaced
    assert isinstance(merged.inner, nn.Conv2d)
    x = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(merged(x), net.head(net.inner.b(net.inner.a(x))))


def test_refusals_name_the_layers():
    relu = nn.ReLU()
    shared = nn.Sequential(nn.Conv2d(2, 2, 1), relu, nn.Conv2d(2, 2, 1), relu)
    with pytest.raises(MergeError, match=r"'1' \(ReLU\) is called 2 times"):
        merge_convs(shared, [[0, 2]])
    with pytest.raises(MergeError, match="not a convolution"):
        merge_convs(shared, [[1, 2]])
    net = _mobilenet()
    with pytest.raises(MergeError, match="also used by 'add' in 'features.3'"):
        merge_convs(net, [["features.2.conv.2", "features.3.conv.0.0"]])
    with pytest.raises(MergeError, match="also list"):
        merge_convs(net, [["features.3.conv.0.0", "features.3.conv.2"]])
    with pytest.raises(MergeError, match="overlap"):
        merge_convs(net, [BLOCK3, ["features.3.conv.2"]])
    no_stats = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False),
                             nn.Conv2d(2, 2, 1))
    with pytest.raises(MergeError, match="keeps no running statistics"):
        merge_convs(no_stats, [[0, 2]])
    with pytest.raises(ValueError, match="padding='zero' is not allowed"):
        merge_convs(net, [BLOCK3], padding="zero")
    with pytest.raises(ValueError, match="list of segments"):
        merge_convs(net, "features.3")
