"""LinearRNN2d: wavefront order against a naive double loop, autograd Jacobians against
the exact path sums, and the P / D stability conditions."""

import itertools

import numpy as np
import pytest
import torch

from signalprop import theory
from signalprop.nn import LinearRNN2d
from signalprop.nn.recurrent import skew, unskew


def _random(mode, channels=3, seed=0):
    torch.manual_seed(seed)
    rnn = LinearRNN2d(channels, mode).double()
    with torch.no_grad():
        rnn.theta.uniform_(-1.5, 1.5)
        rnn.source.uniform_(-1, 1)
        rnn.mark.uniform_(-1, 1)
        rnn.direct.uniform_(-1, 1)
    return rnn


@pytest.mark.parametrize("mode", ["naive", "P", "D"])
@pytest.mark.parametrize("shape", [(5, 7), (1, 6), (6, 1), (4, 4)])
def test_wavefront_equals_the_double_loop(mode, shape):
    rnn = _random(mode)
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    want = rnn.forward_loop(x)
    torch.testing.assert_close(rnn(x), want, rtol=1e-12, atol=1e-12)  # autograd path
    with torch.no_grad():
        torch.testing.assert_close(rnn(x), want, rtol=1e-12, atol=1e-12)  # buffer path


@pytest.mark.parametrize("mode", ["naive", "P", "D"])
def test_autograd_jacobian_is_the_exact_path_sum(mode):
    rnn = _random(mode, channels=2, seed=1)
    h, w = 4, 5
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(rnn, x)  # (1, 2, h, w, 1, 2, h, w)
    t = {k: v.detach().numpy() for k, v in rnn.transitions().items()}
    for c in range(2):
        want = theory.plstm_gain(
            (h, w), {k: t[k][c] for k in t}, source=tuple(rnn.source[:, c].tolist()),
            mark=tuple(rnn.mark[:, c].tolist()), direct=rnn.direct[c].item())
        np.testing.assert_allclose(jac[0, c, :, :, 0, c, 0, 0].numpy(), want, rtol=1e-10,
                                   atol=1e-12)
        assert jac[0, c, :, :, 0, 1 - c].abs().max() == 0  # channels do not mix


def test_p_mode_bounds_the_transitions_out_of_every_edge():
    rnn = _random("P", channels=64)
    t = rnn.transitions()
    assert (t["rl"].abs() + t["dl"].abs()).max() <= 1 + 1e-12
    assert (t["ru"].abs() + t["du"].abs()).max() <= 1 + 1e-12
    d = _random("D", channels=8).transitions()
    assert d["dl"].abs().max() == 0 and max(v.abs().max() for v in d.values()) < 1


@pytest.mark.parametrize("mode", ["P", "D"])
def test_stable_modes_stay_below_their_bound_where_naive_explodes(mode):
    x = torch.zeros(1, 4, 24, 24, dtype=torch.float64)
    x[:, :, 0, 0] = 1.0  # the response to a unit input at the corner
    naive = LinearRNN2d(4, "naive", transition=0.6).double()
    assert naive(x).abs().max() > 500  # C(46, 23) 0.6^45 = 856
    rnn = _random(mode, channels=4, seed=2)
    with torch.no_grad():
        rnn.direct.zero_()
    y = rnn(x).abs().amax(dim=(0, 2, 3))
    assert (y <= rnn.gain_bound() * (1 + 1e-9)).all()
    assert naive.gain_bound() is None


def test_gradients_reach_every_parameter():
    rnn = LinearRNN2d(2, "P")
    x = torch.randn(2, 2, 3, 4, requires_grad=True)
    rnn(x).square().sum().backward()
    assert x.grad is not None
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in rnn.parameters())


def test_skew_layout():
    x = torch.arange(12.0).view(3, 4)
    s = skew(x)
    for i, k in itertools.product(range(3), range(6)):
        assert s[i, k] == (x[i, k - i] if 0 <= k - i < 4 else 0)
    assert torch.equal(unskew(s, 4), x)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        LinearRNN2d(2, "Q")
    with pytest.raises(ValueError, match="transition must be in"):
        LinearRNN2d(2, transition=1.0)
    with pytest.raises(ValueError, match=r"takes \(N, 2, H, W\)"):
        LinearRNN2d(2)(torch.randn(1, 3, 4, 4))
