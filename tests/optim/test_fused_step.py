"""QuantizedTraining's one-pass SGD + rounding step: bit for bit the general path (torch's
SGD, then round_to_grid_) for R, the documented counter-based stream for SR (recomputed
here with NumPy), unbiased rounding by Monte Carlo, thread independence, every kernel
variant, and the fallbacks (the state_dict round trip: test_quantized_training.py)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.nn import QuantConv2d, QuantLinear
from signalprop.optim import QuantizedTraining, _fused_step
from signalprop.optim._fused_step import stream_key


def _hash32_np(x):
    """Wellons' lowbias32 on uint32 arrays (wrapping products), written out again."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x21F0AAAD)
        x = x ^ (x >> np.uint32(15))
        x = x * np.uint32(0xD35A2D97)
        return x ^ (x >> np.uint32(15))


def _uniforms_f32(key, n):
    """Element k's draw: h = hash32(hash32(k ^ key_lo) ^ key_hi), top 24 bits."""
    lo, hi = np.uint32(key & 0xFFFFFFFF), np.uint32(key >> 32)
    h = _hash32_np(_hash32_np(np.arange(n, dtype=np.uint32) ^ lo) ^ hi)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)


def _net(levels="binary", scale="mean_abs", seed=0, conv=False):
    torch.manual_seed(seed)
    if conv:  # one grid unit per output channel
        return nn.Sequential(QuantConv2d(3, 8, 3, padding=1, weight_levels=levels, scale=scale,
                                         per_channel=True),
                             nn.Tanh(), nn.Flatten(), nn.Linear(8 * 6 * 6, 3))
    return nn.Sequential(QuantLinear(6, 40, weight_levels=levels, scale=scale), nn.Tanh(),
                         nn.Linear(40, 3))


def _loss(net, step, conv=False):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(16, 3, 6, 6, generator=g) if conv else torch.randn(16, 6, generator=g)
    return F.cross_entropy(net(x), torch.randint(0, 3, (16,), generator=g))


def test_the_kernel_is_built_and_matches_torch():
    assert _fused_step._c_sgd_round is not None
    assert _fused_step.kernel_available()


@pytest.mark.parametrize("levels, scale, conv", [("binary", "mean_abs", False),
                                                 ("ternary", "rms", True), (3, None, False)])
@pytest.mark.parametrize("opts", [dict(lr=0.1, momentum=0.9),
                                  dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
                                  dict(lr=0.2, momentum=0.5, dampening=0.2, maximize=True),
                                  dict(lr=0.1)])
def test_r_in_one_pass_is_sgd_then_rounding_bit_for_bit(levels, scale, conv, opts, monkeypatch):
    net = _net(levels, scale, conv=conv)
    ref = copy.deepcopy(net)
    fused = QuantizedTraining(torch.optim.SGD(net.parameters(), **opts), net, "r", snap=True)
    assert net[0].grid_unit.numel() == (8 if conv else 1)
    general = QuantizedTraining(torch.optim.SGD(ref.parameters(), **opts), ref, "r", snap=True)
    for step in range(4):
        for model, o, one_pass in ((net, fused, True), (ref, general, False)):
            monkeypatch.setattr(_fused_step, "_kernel_matches", True if one_pass else False)
            o.zero_grad()
            assert o._fusable_layers() == []  # no gradients
            _loss(model, step, conv).backward()
            assert len(o._fusable_layers()) == (1 if one_pass else 0)
            o.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p in net.parameters():  # momentum buffers too
        pr = dict(zip(net.parameters(), ref.parameters()))[p]
        ba = fused.optimizer.state[p].get("momentum_buffer")
        bb = general.optimizer.state[pr].get("momentum_buffer")
        assert (ba is None) == (bb is None)
        if ba is not None:
            torch.testing.assert_close(ba, bb, rtol=0, atol=0)


@pytest.mark.parametrize("levels", ["binary", 3])
def test_sr_in_one_pass_draws_the_documented_stream(levels):
    net = _net(levels, "mean_abs" if levels == "binary" else None, seed=2)
    opt = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.4), net, "sr", snap=True,
                            seed=11)
    layer = net[0]
    unit = layer.grid_unit.reshape(()).item()
    for step in range(2):
        opt.zero_grad()
        _loss(net, step).backward()
        x = (layer.weight.detach() - 0.4 * layer.weight.grad).numpy().ravel()
        r = _uniforms_f32(stream_key(11, 0, step), x.size)
        if levels == "binary":  # +unit with probability (1 + x / unit) / 2
            want = np.copysign(np.float32(unit), x - np.float32(unit) * (r + r - 1))
        else:
            want = np.clip(np.floor(x / np.float32(unit) + r), -3, 3) * np.float32(unit)
        opt.step()
        got = layer.weight.detach().numpy().ravel()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert 0.05 < np.mean(got > 0) < 0.95  # the draws were not all decided by x


def test_the_stream_is_uniform():
    # chi-square over 64 bins of 2^20 draws, for a few (seed, layer, step) keys: the
    # statistic has 63 degrees of freedom (mean 63, sd 11.2); 120 is about 5 sd out
    for key in (stream_key(0, 0, 0), stream_key(5, 3, 17), stream_key(2**40, 1, 2)):
        counts = np.bincount((_uniforms_f32(key, 1 << 20) * 64).astype(int), minlength=64)
        expected = (1 << 20) / 64
        assert ((counts - expected) ** 2 / expected).sum() < 120


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sr_in_one_pass_is_unbiased(dtype):
    # x = 0.3 units on a 3-bit grid: code 1 with probability 0.3, else 0 (Monte Carlo)
    n = 200_000
    p = torch.zeros(n, requires_grad=True, dtype=dtype)
    p.grad = torch.full((n,), -0.3, dtype=dtype)  # lr 1: x = 0.3
    sgd = torch.optim.SGD([p], lr=1.0)
    _fused_step.sgd_round_(sgd, sgd.param_groups[0], p, torch.tensor(1.0, dtype=dtype), 3,
                           stochastic=True, key=stream_key(0, 0, 0))
    codes = p.detach()
    assert set(codes.unique().tolist()) == {0.0, 1.0}
    se = (0.3 * 0.7 / n) ** 0.5
    assert abs(codes.mean().item() - 0.3) < 4 * se


def test_the_draws_do_not_depend_on_the_number_of_threads():
    before = torch.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            p = torch.zeros(300_000, requires_grad=True)
            p.grad = torch.linspace(-1, 1, 300_000)
            sgd = torch.optim.SGD([p], lr=0.5, momentum=0.9)
            _fused_step.sgd_round_(sgd, sgd.param_groups[0], p, torch.tensor(0.5), "binary",
                                   stochastic=True, key=123)
            out.append(p.detach().clone())
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out[0], out[1], rtol=0, atol=0)


def test_other_optimizers_and_a_mismatching_kernel_take_the_general_path(monkeypatch):
    net = _net()
    adam = QuantizedTraining(torch.optim.Adam(net.parameters(), lr=0.1), net, "sr", snap=True)
    _loss(net, 0).backward()
    assert adam._fusable_layers() == []
    adam.step()
    adam.release()
    sgd = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "r", snap=True)
    _loss(net, 1).backward()
    monkeypatch.setattr(_fused_step, "_kernel_matches", False)
    assert sgd._fusable_layers() == []
    monkeypatch.setattr(_fused_step, "_kernel_matches", True)
    assert len(sgd._fusable_layers()) == 1
    net[0].weight.grad = net[0].weight.grad.t().contiguous().t()  # non-contiguous gradient
    assert sgd._fusable_layers() == []


def test_the_kernel_checks_its_buffers():
    p, g = np.zeros(12, np.float32), np.zeros(12, np.float32)
    unit = np.ones(1, np.float32)
    args = (1, False, 0.1, 0.0, 0.0, 0.0, False, False, False, False, 0.0, 0, 1)
    with pytest.raises(ValueError, match="g holds 11 elements"):
        _fused_step._c_sgd_round(p, g[:11], None, unit, *args)
    with pytest.raises(ValueError, match="g must have the element type of p"):
        _fused_step._c_sgd_round(p, g.astype(np.float64), None, unit, *args)
    with pytest.raises(ValueError, match="buf must"):  # momentum needs a writable buffer
        ro = np.zeros(12, np.float32)
        ro.flags.writeable = False
        _fused_step._c_sgd_round(p, g, ro, unit, 1, False, 0.1, 0.9, 0.0, 0.0, False, False,
                                 False, False, 0.0, 0, 1)
    with pytest.raises(ValueError, match="not a positive multiple of rows"):
        _fused_step._c_sgd_round(p, g, None, np.ones(5, np.float32), 5, True, *args[2:])
    for top in (1.5, -2.0):
        with pytest.raises(ValueError, match="top must be a whole number"):
            _fused_step._c_sgd_round(p, g, None, unit, 1, False, 0.1, 0.0, 0.0, 0.0, False,
                                     False, False, False, top, 0, 1)


def test_a_layer_of_many_chunks_on_two_threads_matches_the_general_path(monkeypatch):
    # 160,000 weights: many of the kernel's parallel chunks and blocks, rows split across
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(QuantLinear(400, 400, weight_levels=3, scale=None,
                                        per_channel=True))
        ref = copy.deepcopy(net)
        opts = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
        runs = ((net, QuantizedTraining(torch.optim.SGD(net.parameters(), **opts), net, "r",
                                        snap=True), True),
                (ref, QuantizedTraining(torch.optim.SGD(ref.parameters(), **opts), ref, "r",
                                        snap=True), False))
        for step in range(2):
            for model, o, one_pass in runs:
                monkeypatch.setattr(_fused_step, "_kernel_matches", one_pass)
                o.zero_grad()
                model(torch.randn(8, 400, generator=torch.Generator().manual_seed(step))
                      ).square().mean().backward()
                o.step()
        torch.testing.assert_close(net[0].weight, ref[0].weight, rtol=0, atol=0)
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def variants():
    """The kernel variants this CPU runs (generic, AVX2, AVX-512), each selected in turn;
    the best one again afterwards."""
    best = _fused_step._cqstep.set_variant(-1)
    yield [v for v in range(best + 1)]
    _fused_step._cqstep.set_variant(-1)


def test_every_variant_matches_torch_and_draws_the_documented_stream(variants, monkeypatch):
    # CI machines may lack AVX-512 (or AVX2): each variant must be exact on its own
    for v in variants:
        assert _fused_step._cqstep.set_variant(v) == v
        assert _fused_step._check_kernel(), f"variant {v} differs from torch's SGD + rounding"
        n = 50_000
        p = torch.full((n,), 0.1, requires_grad=True)
        p.grad = torch.zeros(n)
        sgd = torch.optim.SGD([p], lr=0.1)
        _fused_step.sgd_round_(sgd, sgd.param_groups[0], p, torch.tensor(1.0), 3,
                               stochastic=True, key=stream_key(1, 2, 3))
        r = _uniforms_f32(stream_key(1, 2, 3), n)
        want = np.clip(np.floor(np.float32(0.1) + r), -3, 3)
        np.testing.assert_array_equal(p.detach().numpy(), want)
    with pytest.raises(ValueError, match="variant must be"):
        _fused_step._cqstep.set_variant(3)


def test_a_kernel_that_differs_from_torch_is_never_used(monkeypatch):
    real = _fused_step._c_sgd_round

    def off_by_a_little(p, g, buf, unit, rows, per_row, lr, *rest):
        return real(p, g, buf, unit, rows, per_row, lr * (1 + 1e-6), *rest)

    monkeypatch.setattr(_fused_step, "_c_sgd_round", off_by_a_little)
    monkeypatch.setattr(_fused_step, "_kernel_matches", None)
    assert not _fused_step.kernel_available()
    net = _net()
    opt = QuantizedTraining(torch.optim.SGD(net.parameters(), lr=0.1), net, "r", snap=True)
    _loss(net, 0).backward()
    assert opt._fusable_layers() == []
