"""PH weight variances and PH ResNet SPP predictions against closed forms and a NumPy
Monte Carlo of the reference initialization (no torch)."""

import math

import numpy as np
import pytest

from signalprop.theory import ph_resnet_schedule, ph_weight_variance


def _xavier_bound(shape):
    """torch.nn.init.xavier_uniform_'s bound, written out: fan_in = shape[1] * prod(rest),
    fan_out = shape[0] * prod(rest)."""
    rest = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * rest, shape[0] * rest
    return math.sqrt(6.0 / (fan_in + fan_out))


@pytest.mark.parametrize("n,inp,out,k", [(4, 64, 64, 1), (4, 16, 32, 3), (2, 8, 4, 1)])
def test_xavier_factor_variance_by_monte_carlo(n, inp, out, k):
    rng = np.random.default_rng(0)
    a_shape, f_shape = (n, n, n), (n, out // n, inp // n, k)
    per_draw = []
    for _ in range(300):
        a = rng.uniform(-1, 1, a_shape) * _xavier_bound(a_shape)
        f = rng.uniform(-1, 1, f_shape) * _xavier_bound(f_shape)
        w = sum(np.stack([np.kron(a[s], f[s, :, :, t]) for t in range(k)], -1)
                for s in range(n))
        per_draw.append(np.mean(w**2) * inp * k)
    per_draw = np.array(per_draw)
    se = per_draw.std(ddof=1) / math.sqrt(len(per_draw))
    want = ph_weight_variance(n, inp, out, k, init="xavier_factors")
    assert abs(per_draw.mean() - want) < 4 * se
    assert want == pytest.approx(2 * n / (out + n * n))  # the closed form in the docstring


def test_fan_in_variance_is_the_gain_squared_and_bad_sizes_are_refused():
    assert ph_weight_variance(4, 8, 8, 3, gain=1.7) == pytest.approx(1.7**2)
    with pytest.raises(ValueError, match="out_features=6 is not divisible by n=4"):
        ph_weight_variance(4, 8, 6)
    with pytest.raises(ValueError, match="init='he'"):
        ph_weight_variance(4, 8, 8, init="he")


def _total(r):
    return np.array(r.avg_var) + np.array(r.avg_sq_mean)


def test_schedule_doubles_without_phydi_and_stays_with_it():
    assert _total(ph_resnet_schedule(6, branch_gain=1.0)) == pytest.approx(2.0 ** np.arange(7))
    assert _total(ph_resnet_schedule(6)) == pytest.approx(np.ones(7))
    r = ph_resnet_schedule(3, branch_gain=0.5)  # (1 + g^2) per block
    assert _total(r) == pytest.approx(1.25 ** np.arange(4))
    assert r.res_var[0] is None and r.names[-1] == "blocks.2"


def test_plain_stack_with_reference_init_shrinks_by_sigma_w2_over_2_per_conv():
    sw2 = ph_weight_variance(4, 32, 32, 3, init="xavier_factors")
    r = ph_resnet_schedule(4, init="xavier_factors", residual=False)
    assert _total(r) == pytest.approx((sw2 / 2) ** (2 * np.arange(5)))


def test_zero_padding_removes_the_missing_taps():
    """Length 4, kernel 3: 2 of 12 taps fall outside (1/6 of the variance for a
    LeCun stem on a zero-mean input)."""
    r = ph_resnet_schedule(1, length=4)
    assert r.avg_var[0] == pytest.approx(10 / 12)
