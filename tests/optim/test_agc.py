"""AGC: the unit-wise formula per layer type against a brute-force loop, head exclusion from
the module graph, GradScaler, frozen parameters, state_dict round trip, bad input."""

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.optim import AGC, unitwise_norm

LAM, EPS = 0.02, 1e-3


def _units(name, module, p):
    """Index tuples selecting each output unit of parameter ``p``, written out per layout."""
    if p.dim() < 2:
        return [(...,)]
    if isinstance(module, nn.modules.conv._ConvTransposeNd) and name == "weight":
        g = module.groups
        in_g, out_g = p.shape[0] // g, p.shape[1]
        return [(slice(k * in_g, (k + 1) * in_g), j) for k in range(g) for j in range(out_g)]
    return [(i,) for i in range(p.shape[0])]


def _brute_clip(module, name, p, g):
    """AGC by the paper's formula, one unit at a time, in float64."""
    out = g.double().clone()
    w = p.double()
    clipped = 0
    for idx in _units(name, module, p):
        wn = max(w[idx].norm().item(), EPS)
        gn = out[idx].norm().item()
        if gn > LAM * wn:
            out[idx] = out[idx] * (LAM * wn / gn)
            clipped += 1
    return out, clipped


class AllLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 5)
        self.conv1d = nn.Conv1d(4, 6, 3)
        self.conv2d = nn.Conv2d(4, 6, 3, groups=2)
        self.conv3d = nn.Conv3d(2, 3, 2)
        self.convt = nn.ConvTranspose2d(4, 6, 3)
        self.convt_groups = nn.ConvTranspose2d(4, 6, 3, groups=2)
        self.convt1d = nn.ConvTranspose1d(3, 5, 2)
        self.emb = nn.Embedding(7, 4)
        self.mha = nn.MultiheadAttention(8, 2)
        self.mha_kdim = nn.MultiheadAttention(8, 2, kdim=5, vdim=3)
        self.scalar = nn.Parameter(torch.tensor(0.3))
        self.head = nn.Linear(5, 2)


def _hand_made_grads(model):
    """Gradients whose unit norms span 1e-4 .. 1e2 times lambda * ||W||: some clipped, some not."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.emb.weight[3] = 0  # a zero row: the eps floor decides its clipping threshold
        for p in model.parameters():
            g = torch.randn(p.shape, generator=gen)
            if p.dim() >= 1:
                factor = 10 ** (torch.rand(p.shape[0], generator=gen) * 6 - 4)
                g = g * factor.reshape(-1, *[1] * (p.dim() - 1)) * LAM
            p.grad = g


def test_agc_equals_the_formula_for_every_layer_type():
    torch.manual_seed(0)
    model = AllLayers()
    _hand_made_grads(model)
    expected, clipped, kept = {}, 0, 0
    for mname, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            exp, c = _brute_clip(m, pname, p, p.grad)
            expected[full] = exp
            clipped += c
            kept += len(_units(pname, m, p)) - c
    agc = AGC(torch.optim.SGD(model.parameters(), lr=0.1), model, clipping=LAM, eps=EPS,
              exclude=())
    agc.clip_gradients()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad.double(), expected[name], rtol=1e-5, atol=1e-9,
                                   msg=name)
    assert clipped > 50 and kept > 50  # both branches of the rule were exercised
    names = dict(model.named_parameters())
    assert {"mha.in_proj_weight", "mha.out_proj.weight", "mha_kdim.q_proj_weight",
            "mha_kdim.k_proj_weight", "mha_kdim.v_proj_weight", "scalar"} <= set(names)


def test_conv_transpose_units_are_output_channels():
    # weight (in=4, out/groups=3, k): output channel 4 of groups=2 reads rows 2..3, column 1
    w = torch.randn(4, 3, 2)
    norms = unitwise_norm(w, "transposed", groups=2)
    assert norms.shape == (2, 1, 3, 1)
    assert norms[1, 0, 1, 0].item() == pytest.approx(w[2:4, 1].norm().item(), rel=1e-6)


class HeadFirst(nn.Module):
    """The classifier is registered (and its parameters listed) first, applied last; an
    auxiliary projection is registered last."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.body = nn.Linear(4, 8)
        self.proj = nn.Linear(8, 8)

    def forward(self, x):
        return self.head(F.relu(self.proj(F.relu(self.body(x)))))


@pytest.mark.parametrize("with_example", [False, True])
def test_default_exclusion_is_the_last_linear_applied_not_the_last_parameter(with_example):
    torch.manual_seed(0)
    model = HeadFirst()
    x = torch.randn(16, 4)
    assert list(dict(model.named_parameters()))[-1] == "proj.bias"
    agc = AGC(torch.optim.SGD(model.parameters(), lr=0.0), model, clipping=1e-4,
              example_input=x if with_example else None)
    (model(x) * 100).sum().backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    agc.step()
    assert agc.excluded == ["head.bias", "head.weight"]
    for n, p in model.named_parameters():
        if n.startswith("head."):
            assert torch.equal(p.grad, before[n]), n
        else:
            assert p.grad.norm() < before[n].norm(), n


def test_exclude_by_names_modules_and_predicate():
    model = HeadFirst()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert AGC(opt, model, exclude=["body"]).excluded == ["body.bias", "body.weight"]
    assert AGC(opt, model, exclude="proj.weight").excluded == ["proj.weight"]
    assert AGC(opt, model, exclude=lambda n, p: p.dim() == 1).excluded == [
        "body.bias", "head.bias", "proj.bias"]
    named = AGC(opt, list(model.named_parameters()), exclude=["head.weight"], layouts="rows")
    assert named.excluded == ["head.weight"]
    with pytest.raises(ValueError, match="exclude: 'nope' names no parameter or module"):
        AGC(opt, model, exclude=["nope"])


def test_model_without_linear_head_asks_for_exclude():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="it has no nn.Linear layer.*pass exclude="):
        AGC(opt, conv)
    AGC(opt, conv, exclude=())  # clipping everything is allowed explicitly
    with pytest.raises(ValueError, match="exclude must be given when AGC gets parameters"):
        AGC(opt, conv.parameters())
    model = HeadFirst()
    agc = AGC(torch.optim.SGD(model.parameters(), lr=0.1), model)
    with pytest.raises(ValueError, match="no forward has applied an nn.Linear yet"):
        agc.step()


@pytest.mark.parametrize("kwargs,match", [
    ({"clipping": 0.0}, "clipping must be a finite number > 0, got 0.0"),
    ({"clipping": -1.0}, "clipping must be a finite number > 0, got -1.0"),
    ({"clipping": math.inf}, "clipping must be a finite number > 0, got inf"),
    ({"eps": -1e-3}, "eps must be a finite number >= 0, got -0.001"),
])
def test_bad_clipping_and_eps(kwargs, match):
    model = HeadFirst()
    with pytest.raises(ValueError, match=match):
        AGC(torch.optim.SGD(model.parameters(), lr=0.1), model, **kwargs)


def test_frozen_and_gradient_free_parameters_are_skipped():
    class Partial(nn.Module):
        def __init__(self):
            super().__init__()
            self.frozen = nn.Linear(4, 4).requires_grad_(False)
            self.unused = nn.Linear(4, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.frozen(x))

    model = Partial()
    x = torch.randn(3, 4)
    agc = AGC(torch.optim.SGD(model.parameters(), lr=0.1), model, example_input=x)
    model(x).sum().backward()
    agc.step()
    assert model.unused.weight.grad is None and model.frozen.weight.grad is None


def _train(model, agc, x, y, steps, scaler=None):
    for _ in range(steps):
        agc.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if scaler is None:
            loss.backward()
            agc.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(agc)
            scaler.update()


def test_grad_scaler_path_clips_the_unscaled_gradients():
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    plain = HeadFirst()
    scaled, wrong = copy.deepcopy(plain), copy.deepcopy(plain)
    mk = lambda m: AGC(torch.optim.SGD(m.parameters(), lr=0.5), m, clipping=1e-3,  # noqa: E731
                       example_input=x)
    a_plain, a_scaled, a_wrong = mk(plain), mk(scaled), mk(wrong)
    _train(plain, a_plain, x, y, 3)
    _train(scaled, a_scaled, x, y, 3, torch.amp.GradScaler("cpu", init_scale=2.0**14))
    for (n, p), q in zip(plain.named_parameters(), scaled.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=n)
    # clipping the *scaled* gradients, then unscaling, gives different weights
    for _ in range(3):
        a_wrong.zero_grad()
        (F.cross_entropy(wrong(x), y) * 2.0**14).backward()
        a_wrong.clip_gradients()
        for p in wrong.parameters():
            p.grad /= 2.0**14
        a_wrong.optimizer.step()
    assert not torch.allclose(wrong.body.weight, plain.body.weight, rtol=1e-3)


def test_grad_scaler_skips_the_step_on_infinite_gradients():
    model = HeadFirst()
    x = torch.randn(4, 4)
    agc = AGC(torch.optim.SGD(model.parameters(), lr=0.5), model, example_input=x)
    before = copy.deepcopy(model.state_dict())
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(model(x).sum() * float("inf")).backward()
    scaler.step(agc)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    a = HeadFirst()
    agc_a = AGC(torch.optim.SGD(a.parameters(), lr=0.3, momentum=0.9), a, clipping=1e-2)
    _train(a, agc_a, x, y, 2)
    saved_model, saved_opt = copy.deepcopy(a.state_dict()), copy.deepcopy(agc_a.state_dict())
    assert saved_opt["agc"]["excluded"] == ["head.bias", "head.weight"]
    b = HeadFirst()
    agc_b = AGC(torch.optim.SGD(b.parameters(), lr=0.3, momentum=0.9), b, clipping=0.5)
    b.load_state_dict(saved_model)
    agc_b.load_state_dict(saved_opt)
    assert agc_b.clipping == 1e-2 and agc_b.excluded == agc_a.excluded
    _train(a, agc_a, x, y, 2)
    _train(b, agc_b, x, y, 2)
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), n
    with pytest.raises(ValueError, match="keys 'optimizer' and 'agc'"):
        agc_b.load_state_dict(saved_model)
