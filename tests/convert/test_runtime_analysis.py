"""The structure read from one forward (hooks + torch-function mode) against the torch.fx
graph's, conversions of the two paths against each other, module names torch.fx cannot
write as code, and the errors of the forward path."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from styled_models import BasicBlock, Bottleneck, HFEncoderModel, TVResNet

import signalprop as sp
from signalprop.convert import ConversionError, GatedBranch, bn_to_gn_ws, fold_ws, to_normfree
from signalprop.convert._graph import graph_analysis
from signalprop.convert._runtime import runtime_analysis

MODELS = [
    (lambda: TVResNet(BasicBlock, [2, 1, 1], width=8), (4, 3, 16, 16), 1),
    (lambda: TVResNet(Bottleneck, [1, 1, 1], width=4), (4, 3, 16, 16), 1),
    (lambda: HFEncoderModel(layers=2), (4, 10, 12), -1),
]


@pytest.mark.parametrize("build,shape,channel_dim", MODELS)
def test_forward_analysis_equals_the_graph_analysis(build, shape, channel_dim):
    torch.manual_seed(0)
    model = build()
    graph = graph_analysis(model, "test")
    run = runtime_analysis(model, torch.randn(shape), "test")
    assert run.residuals == graph.residuals and len(run.residuals) > 0
    assert run.head == graph.head
    # the graph has calls of leaf modules only; the forward sees containers run too
    assert {n: c for n, c in run.calls.items() if n in graph.calls} == graph.calls
    assert {n: [a for a, _ in run.feeds[n]] for n in graph.feeds} == {
        n: [a for a, _ in f] for n, f in graph.feeds.items()}


@pytest.mark.parametrize("build,shape,channel_dim", MODELS)
def test_both_paths_convert_to_the_same_function(build, shape, channel_dim):
    torch.manual_seed(0)
    model = build()
    x = torch.randn(shape)
    by_graph, r_graph = to_normfree(model, skipinit_init=0.7)
    by_run, r_run = to_normfree(model, skipinit_init=0.7, example_input=x, calibrate=False)
    assert r_graph.method == "torch.fx graph" and r_run.method == "forward hooks on example_input"
    assert [(c.module, c.action) for c in r_graph.changes] == [
        (c.module, c.action) for c in r_run.changes]
    gammas = [c.detail.split(" for ")[0] for c in r_graph.changes]
    assert gammas == [c.detail.split(" for ")[0] for c in r_run.changes]
    assert by_graph.state_dict().keys() == by_run.state_dict().keys()
    assert [type(m) for m in by_graph.modules()] == [type(m) for m in by_run.modules()]
    by_run.eval(), by_graph.eval()  # dropout
    torch.testing.assert_close(by_run(x), by_graph(x), rtol=1e-6, atol=1e-6)


def test_in_place_and_functional_additions_in_one_forward():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            out = self.bn(self.conv(torch.relu(x)))
            if x.shape[-1] > 4:  # control flow: torch.fx cannot trace this
                out += x
            else:
                out = torch.add(x, out)
            return out

    model = nn.Sequential(nn.Conv2d(3, 4, 1), Block(), Block())
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ConversionError, match=r"tracing failed in module '1' \(Block\).*"
                       "Pass example_input="):
        to_normfree(model)
    nf, report = to_normfree(model, example_input=x)
    assert report.residual_blocks == ["1", "2"]
    assert isinstance(nf[1].bn, GatedBranch) and isinstance(nf[2].bn, GatedBranch)
    assert nf[1].conv.gamma == pytest.approx(sp.theory.gamma("relu"))
    assert sp.batch_independence(nf, x).independent


class Quoted(nn.Module):
    """A residual block whose modules sit under names holding a double quote."""

    def __init__(self):
        super().__init__()
        self.body = nn.ModuleDict({'conv"1': nn.Conv2d(3, 3, 3, padding=1),
                                   'bn"1': nn.BatchNorm2d(3)})
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = x + self.body['bn"1'](self.body['conv"1'](x))
        return self.head(x.mean((2, 3)))


def test_module_names_with_quotes_convert():
    # Regression: torch.fx wrote these names into Python code and raised SyntaxError.
    torch.manual_seed(0)
    model = Quoted()
    x = torch.randn(4, 3, 8, 8)
    nf, report = to_normfree(model, skipinit_init=0.5)
    assert report.residual_blocks == ["<model>"]
    gate = nf.body['bn"1']
    assert isinstance(gate, GatedBranch) and isinstance(gate.inner, nn.Identity)
    conv = nf.body['conv"1']
    expected = x + 0.5 * F.conv2d(x, conv.standardized_weight(), conv.bias, padding=1)
    torch.testing.assert_close(nf(x), model.head(expected.mean((2, 3))))
    gn, _ = bn_to_gn_ws(model)
    assert isinstance(gn.body['bn"1'], nn.GroupNorm)
    folded = fold_ws(nf.eval())
    torch.testing.assert_close(folded(x), nf(x), rtol=1e-5, atol=1e-5)


def test_build_report_fix_on_quoted_names(tmp_path):
    torch.manual_seed(0)
    result = sp.report.build_report(Quoted(), torch.randn(4, 3, 8, 8), tmp_path, fix=True)
    assert result.after is not None and "to_normfree" in result.fix_summary


def test_forward_failure_and_functional_batch_norm_name_the_module():
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(5, 2))
    with pytest.raises(ConversionError, match=r"forward on example_input failed .*module '1' "
                       r"\(Linear\)"):
        to_normfree(model, example_input=torch.randn(3, 4))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return x + F.batch_norm(self.fc(x), None, None, training=True)

    with pytest.raises(ConversionError, match=r"batch_norm is called as a function in '1'"):
        to_normfree(nn.Sequential(nn.Linear(4, 4), Functional()), example_input=torch.randn(3, 4))


def test_shared_branch_end_and_element_outputs_are_refused_with_reasons():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            x = x + self.norm(self.fc(x))
            return x + self.norm(self.fc(x))  # one LayerNorm ends two branches

    nf, report = to_normfree(Shared(), example_input=torch.randn(3, 4))
    reasons = {c.detail for c in report.not_converted if c.action == "no residual gain"}
    assert reasons == {"module 'norm' ending the branch is called 2 times"}
    assert not any(isinstance(m, GatedBranch) for m in nf.modules())


def test_calibrate_needs_example_input_and_original_is_untouched():
    model = TVResNet(BasicBlock, [1, 1, 1], width=8)
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="calibrate=True needs example_input"):
        to_normfree(model, calibrate=True)
    to_normfree(model, example_input=torch.randn(2, 3, 16, 16))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert model.training
