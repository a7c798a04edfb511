"""estimator_indicators against the indicators computed by hand (autograd + torch.var)."""

import copy

import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.nn import QuantLinear, ReSTESchedule
from signalprop.results import EstimatorIndicatorsResult

CE = nn.CrossEntropyLoss()


def _net(estimator="reste", params=None, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(QuantLinear(12, 24, estimator=estimator, estimator_params=params),
                         nn.BatchNorm1d(24),
                         QuantLinear(24, 24, act_levels="binary", estimator=estimator,
                                     estimator_params=params),
                         QuantLinear(24, 4, weight_levels="ternary"))


def _data(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 12, generator=g), torch.randint(0, 4, (n,), generator=g)


def _by_hand(net, x, y, o):
    ref = copy.deepcopy(net)
    ref.zero_grad()
    CE(ref(x), y).backward()
    out = []
    for i in (0, 2):
        w = ref[i].weight.detach()
        err = torch.linalg.vector_norm(torch.sign(w) * w.abs() ** (1 / o) - torch.sign(w))
        out.append((float(err), float(ref[i].weight.grad.abs().var())))
    return out


def test_matches_the_definitions_on_one_batch():
    net = _net(params={"o": 2.5})
    x, y = _data()
    r = sp.estimator_indicators(net, x, y, loss_fn=CE, step=7)
    assert [rec.name for rec in r.records] == ["0", "2"]  # the ternary layer has no sign
    for rec, (err, var) in zip(r.records, _by_hand(net, x, y, 2.5)):
        assert rec.estimating_error == pytest.approx(err, rel=1e-6)
        assert rec.gradient_instability == pytest.approx(var, rel=1e-5)
    assert r.estimating_error == pytest.approx(sum(rec.estimating_error for rec in r.records))
    assert r.step == 7 and r.records[1].n_weights == 24 * 24


def test_chunks_average_the_per_chunk_instability():
    net = _net(estimator="clipped")
    x, y = _data(n=48)
    r = sp.estimator_indicators(net, x, y, loss_fn=CE, chunks=3)
    want = []
    for xc, yc in zip(x.tensor_split(3), y.tensor_split(3)):
        ref = copy.deepcopy(net)
        CE(ref(xc), yc).backward()
        want.append(float(ref[2].weight.grad.abs().var()))
    assert r.records[1].gradient_instability == pytest.approx(sum(want) / 3, rel=1e-5)
    # clipped: g(w) = clamp(w, -1, 1) = w for these small weights
    w = net[0].weight.detach()
    assert r.records[0].estimating_error == pytest.approx(
        float(torch.linalg.vector_norm(w - torch.sign(w))), rel=1e-6)


def test_leaves_the_model_as_it_was():
    net = _net()
    x, y = _data()
    before = copy.deepcopy(net.state_dict())
    sp.estimator_indicators(net, x, y, loss_fn=CE)
    assert all(p.grad is None for p in net.parameters())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.training


def test_larger_o_lowers_the_estimating_error_of_the_same_weights():
    sched = ReSTESchedule(total_steps=4, o_end=4.0)
    net = _net(params={"o": sched})
    x, y = _data()
    errors = []
    for _ in range(5):
        errors.append(sp.estimator_indicators(net, x, y, loss_fn=CE).estimating_error)
        sched.step()
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0]


def test_result_round_trip_and_csv():
    r = sp.estimator_indicators(_net(), *_data(), loss_fn=CE)
    back = EstimatorIndicatorsResult.from_json(r.to_json())
    assert back.records == r.records and back.gradient_instability == r.gradient_instability
    assert r.to_csv().splitlines()[0].startswith("label,name,index,estimator")


@pytest.mark.parametrize("call, match", [
    (lambda x, y: sp.estimator_indicators(nn.Linear(12, 4), x, y, loss_fn=CE),
     "no quantized layer with binary weights"),
    (lambda x, y: sp.estimator_indicators(_net(), x, y), "loss_fn is required"),
    (lambda x, y: sp.estimator_indicators(_net(), x, y, loss_fn=CE, chunks=0),
     "chunks must be an integer >= 1"),
    (lambda x, y: sp.estimator_indicators(_net(), x, y, loss_fn=CE, chunks=100),
     "exceeds the batch size"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(*_data())
