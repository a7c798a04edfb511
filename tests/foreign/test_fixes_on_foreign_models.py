"""The fixes (to_normfree, bn_to_gn_ws, fold_ws, AGC) on models nobody here wrote: each
converts correctly (finite forward of the same shape, batch-independent in train mode, the
original untouched; AGC clips each output unit as computed here by hand) or refuses with a
clear message that docs/foreign-models.md lists as a known limit.

HF ResNet and ConvNeXt must convert (module surgery where torch.fx cannot trace them);
models without BatchNorm must come out of bn_to_gn_ws unchanged, saying so.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.convert import ConversionError

from .zoo import CASES, loss, output_tensor

pytest.importorskip("transformers")

IDS = [c.name for c in CASES]
MUST_CONVERT = {"resnet", "convnext"}
BATCHNORM = nn.modules.batchnorm._BatchNorm


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def check_converted(case, original, fixed, x):
    """A converted model: finite, same output shape, batch-independent in train mode."""
    fixed.train()
    with torch.no_grad():
        y, y0 = output_tensor(fixed(x)), output_tensor(original(x))
    assert y.shape == y0.shape and bool(torch.isfinite(y).all())
    assert not any(isinstance(m, BATCHNORM) for m in fixed.modules())
    assert sp.batch_independence(fixed, x, modes=("train",)).independent


def normfree(model, x):
    """to_normfree as a user would call it: with the batch when torch.fx cannot trace the
    model (the error says so)."""
    try:
        return sp.convert.to_normfree(model)
    except ConversionError as e:
        assert str(e).strip() and "\n" not in str(e).strip()  # one clear line
        assert "example_input" in str(e)
    return sp.convert.to_normfree(model, example_input=x)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_normfree(case):
    model, x = case.model(), case.x()
    before = state(model)
    try:
        fixed, report = normfree(model, x)
    except ConversionError as e:
        assert case.name not in MUST_CONVERT, e
        assert str(e).strip() and "\n" not in str(e).strip()  # one clear line
        return
    finally:
        assert same_state(before, state(model))  # the original is untouched
    if case.name in MUST_CONVERT:
        assert report.changes and report.residual_blocks
    if report.changes:
        check_converted(case, model, fixed, x)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bn_to_gn_ws(case):
    model, x = case.model(), case.x()
    before = state(model)
    fixed, report = sp.convert.bn_to_gn_ws(model)
    assert same_state(before, state(model))
    if case.batchnorm:
        assert any(isinstance(m, nn.GroupNorm) for m in fixed.modules())
        check_converted(case, model, fixed, x)
        return
    # no BatchNorm: nothing to convert, and nothing is changed (it used to turn every
    # convolution into a WS convolution without a word)
    assert not report.changes
    fixed.eval(), model.eval()
    with torch.no_grad():
        assert torch.equal(output_tensor(fixed(x)), output_tensor(model(x)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fold_ws(case):
    model, x = case.model().eval(), case.x()
    with torch.no_grad():
        y0 = output_tensor(model(x))
        assert torch.allclose(output_tensor(sp.convert.fold_ws(model)(x)), y0, atol=1e-6)
    if case.name not in MUST_CONVERT:
        return
    nf, _ = normfree(case.model(), x)
    nf.eval()
    with torch.no_grad():
        y = output_tensor(nf(x))
        folded = output_tensor(sp.convert.fold_ws(nf)(x))
    assert torch.allclose(folded, y, rtol=1e-4, atol=1e-5 * float(y.abs().max()))


# ---- AGC ----------------------------------------------------------------------------------


def unit_dims(module, attr, p):
    """The axes to reduce for one unit's norm, by layer type (None: the whole tensor is one
    unit; "?": a layout the layer type does not tell)."""
    if p.dim() < 2:
        return None
    if type(module).__name__ == "Conv1D" and attr == "weight":  # HF GPT-2: (in, out)
        return (0,)
    if isinstance(module, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd, nn.RNNBase,
                           nn.MultiheadAttention)):
        return tuple(range(1, p.dim()))
    return "?"


def expected_clipped(model, clipping, eps):
    """Each parameter's gradient after AGC, by hand: g_u * min(1, lambda max(|w_u|, eps) /
    |g_u|) per output unit u."""
    out, unknown = {}, set()
    for mname, m in model.named_modules():
        for attr, p in m.named_parameters(recurse=False):
            if p.grad is None or id(p) in out:
                continue
            dims = unit_dims(m, attr, p)
            if dims == "?":
                unknown.add(f"{mname}.{attr}".lstrip("."))
                continue
            g, w = p.grad.double(), p.detach().double()
            gn, wn = (torch.linalg.vector_norm(t, dim=dims, keepdim=dims is not None)
                      for t in (g, w))
            limit = clipping * wn.clamp_min(eps)
            out[id(p)] = g * torch.where(gn > limit, limit / gn.clamp_min(1e-300), 1.0)
    return out, unknown


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_agc_clips_each_output_unit(case):
    model, x = case.model().double(), case.x()
    x = x.double() if x.is_floating_point() else x
    clipping, eps = 1e-3, 1e-3
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss(model(x)).backward()
    expected, unknown = expected_clipped(model, clipping, eps)
    before = {id(p): p.detach().clone() for p in model.parameters()}
    try:
        sp.optim.AGC(opt, model, clipping=clipping, eps=eps, exclude=()).step()
    except ValueError as e:  # a layout AGC cannot tell: refused, naming the module
        assert unknown and any(n.rsplit(".", 1)[0] in str(e) for n in unknown), e
        return
    assert expected
    for p in model.parameters():
        if id(p) in expected:  # SGD with lr 1: the step is minus the clipped gradient
            assert torch.allclose(before[id(p)] - p.detach(), expected[id(p)], rtol=1e-6,
                                  atol=1e-12)


def test_agc_on_gpt2_conv1d_clips_columns_not_rows():
    # regression: HF Conv1D keeps its weight as (in, out); its units are columns
    from .zoo import gpt2

    torch.manual_seed(0)
    model = gpt2().double()
    conv = model.transformer.h[0].mlp.c_fc  # (16, 64): 16 inputs, 64 output units
    opt = torch.optim.SGD([conv.weight], lr=1.0)
    conv.weight.grad = torch.randn_like(conv.weight)
    before = conv.weight.detach().clone()
    limit = 1e-3 * conv.weight.detach().norm(dim=0).clamp_min(1e-3)
    want = conv.weight.grad * torch.clamp(limit / conv.weight.grad.norm(dim=0), max=1.0)
    sp.optim.AGC(opt, model, clipping=1e-3, exclude=()).step()
    assert torch.allclose(before - conv.weight.detach(), want, rtol=1e-9)


@pytest.mark.parametrize("name", ["resnet", "convnext"])
def test_converted_hf_cnns_train(name):
    """A few SGD steps on a fixed batch: the converted model's loss goes down."""
    case = next(c for c in CASES if c.name == name)
    x = case.x()
    fixed, _ = normfree(case.model(), x)
    fixed.train()
    head = nn.Linear(output_tensor(fixed(x)).shape[1], 3)
    y = torch.tensor([0, 1, 2, 0])
    both = nn.ModuleDict({"body": fixed, "head": head})
    opt = sp.optim.AGC(torch.optim.SGD(both.parameters(), lr=0.05, momentum=0.9), both,
                       clipping=0.1, exclude=["head"])

    def step():
        feats = output_tensor(fixed(x)).flatten(2).mean(-1)
        value = nn.functional.cross_entropy(head(feats), y)
        opt.zero_grad()
        value.backward()
        opt.step()
        return float(value.detach())

    first = step()
    for _ in range(30):
        last = step()
    assert last < 0.5 * first


def test_the_original_is_never_changed_by_a_fix():
    model = copy.deepcopy(CASES[0].model())
    before = state(model)
    for fix in (sp.convert.bn_to_gn_ws, sp.convert.fold_ws):
        fix(model)
    assert same_state(before, state(model))
