"""The merged convolution against applying the convolutions one after the other (float64,
random shapes with strides, dilations, groups, depthwise, 1-3 spatial dims), moved
padding against padding the input once and convolving without padding, circular
padding, residual sums, and the refusals."""

import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from signalprop.convert.compress._module import group_count, to_module
from signalprop.convert.compress._spec import (
    MergeError,
    conv_spec,
    identity_spec,
    plus,
    then_affine,
    then_conv,
)

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
FCONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _merge(convs, policy="exact"):
    spec = identity_spec(convs[0].in_channels, convs[0].weight.dim() - 2)
    for i, c in enumerate(convs):
        spec = then_conv(spec, conv_spec(c, str(i)), str(i), "seg", policy)
    return spec


def _random_conv(rng, nd, c_in, c_out, padding):
    groups = [g for g in (1, 2, 3) if c_in % g == 0 and c_out % g == 0]
    if c_in == c_out:
        groups.append(c_in)  # depthwise
    return CONV[nd](c_in, c_out, rng.choice([1, 2, 3]), stride=rng.choice([1, 2]),
                    dilation=rng.choice([1, 2]), padding=padding, groups=rng.choice(groups),
                    bias=rng.random() < 0.7, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(6))
def test_merged_conv_equals_the_convolutions_applied_in_turn(seed):
    rng = random.Random(seed)
    checked = 0
    while checked < 25:
        nd, depth = rng.choice([1, 2, 2, 3]), rng.choice([2, 2, 3])
        chans = [rng.choice([2, 3, 6]) for _ in range(depth + 1)]
        # only the first convolution pads: merging is then exact on the whole input
        convs = [_random_conv(rng, nd, chans[i], chans[i + 1], rng.choice([0, 1, 2]) if i == 0
                              else 0) for i in range(depth)]
        size = rng.randint(11, 17) if nd < 3 else rng.randint(9, 11)
        x = torch.randn(2, chans[0], *([size] * nd), dtype=torch.float64)
        ref = x
        try:
            for c in convs:
                ref = c(ref)
        except RuntimeError:  # the input is too small for this chain
            continue
        merged = to_module(_merge(convs), dtype=torch.float64)
        out = merged(x)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
        checked += 1


def test_kernel_stride_dilation_arithmetic():
    a = nn.Conv2d(2, 2, 3, stride=1, dtype=torch.float64)
    b = nn.Conv2d(2, 2, 5, stride=1, dtype=torch.float64)
    assert _merge([a, b]).kernel == (7, 7)  # k1 + k2 - 1
    a = nn.Conv2d(2, 2, 3, stride=2, dtype=torch.float64)
    spec = _merge([a, b])
    assert spec.kernel == (11, 11) and spec.stride == (2, 2)  # k1 + s1 (k2 - 1)
    a = nn.Conv1d(2, 2, 3, dilation=2, dtype=torch.float64)
    b = nn.Conv1d(2, 2, 3, dilation=2, dtype=torch.float64)
    spec = _merge([a, b])
    assert spec.kernel == (5,) and spec.dilation == (2,)  # taps stay on the dilated grid


def test_groups_are_kept_where_the_product_stays_block_diagonal():
    dw = nn.Conv2d(4, 4, 3, groups=4, dtype=torch.float64)
    dw2 = nn.Conv2d(4, 4, 3, groups=4, dtype=torch.float64)
    g2 = nn.Conv2d(4, 4, 1, groups=2, dtype=torch.float64)
    dense = nn.Conv2d(4, 4, 1, dtype=torch.float64)
    assert to_module(_merge([dw, dw2]), dtype=torch.float64).groups == 4
    assert to_module(_merge([dw, g2]), dtype=torch.float64).groups == 2
    assert to_module(_merge([dw, dense]), dtype=torch.float64).groups == 1
    w = torch.zeros(6, 3, 1)
    w[:2, 0] = w[2:4, 1] = w[4:, 2] = 1.0  # 3 groups of 2 outputs
    assert group_count(w) == 3


def test_moved_zero_padding_equals_padding_the_input_once():
    torch.manual_seed(0)
    convs = [nn.Conv2d(3, 4, 3, padding=1, stride=2, dtype=torch.float64),
             nn.Conv2d(4, 5, 3, padding=2, dilation=2, dtype=torch.float64),
             nn.Conv2d(5, 2, 3, padding=1, groups=1, dtype=torch.float64)]
    with pytest.raises(MergeError, match="cannot move the zeros padding of '1'"):
        _merge(convs)
    spec = _merge(convs, policy="move")
    assert spec.moved == ("1", "2")
    x = torch.randn(2, 3, 15, 15, dtype=torch.float64)
    total = 1 + 2 * 2 + 2 * 1 * 1  # p1 + s1 p2 + s1 s2 p3
    y = F.pad(x, (total,) * 4)
    for c in convs:  # independent: pad once, then convolve without padding
        y = F.conv2d(y, c.weight, c.bias, c.stride, 0, c.dilation, c.groups)
    torch.testing.assert_close(to_module(spec, dtype=torch.float64)(x), y)
    ref = x
    for c in convs:
        ref = c(ref)
    diff = (to_module(spec, dtype=torch.float64)(x) - ref).abs()
    assert diff.shape == ref.shape and diff.max() > 1e-3  # the border differs ...
    assert diff[..., 3:-3, 3:-3].max() < 1e-10  # ... the interior does not


def test_zero_padding_after_a_pointwise_unbiased_map_moves_exactly():
    pw = nn.Conv2d(3, 4, 1, stride=2, bias=False, dtype=torch.float64)
    conv = nn.Conv2d(4, 2, 3, padding=1, dtype=torch.float64)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    merged = to_module(_merge([pw, conv]), dtype=torch.float64)
    torch.testing.assert_close(merged(x), conv(pw(x)))
    pw_biased = nn.Conv2d(3, 4, 1, dtype=torch.float64)
    with pytest.raises(MergeError, match="kernel > 1, padding or a bias"):
        _merge([pw_biased, conv])


def test_circular_padding_composes_exactly_for_stride_one_same_convolutions():
    kw = {"padding_mode": "circular", "dtype": torch.float64}
    convs = [nn.Conv2d(3, 6, 1), nn.Conv2d(6, 6, 3, padding=1, groups=6, **kw),
             nn.Conv2d(6, 4, 5, padding=4, dilation=2, **kw), nn.Conv2d(4, 2, 3, padding=1,
                                                                        stride=2, **kw)]
    convs[0] = convs[0].double()
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    ref = x
    for c in convs:
        ref = c(ref)
    merged = to_module(_merge(convs), dtype=torch.float64)
    assert merged.padding_mode == "circular"
    torch.testing.assert_close(merged(x), ref)
    after_stride = [nn.Conv2d(3, 3, 3, padding=1, stride=2, **kw),
                    nn.Conv2d(3, 3, 3, padding=1, **kw)]
    with pytest.raises(MergeError, match="not a stride-1 circular convolution"):
        _merge(after_stride)


def test_padding_modes_that_do_not_compose_are_refused():
    first = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", dtype=torch.float64)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    pw = nn.Conv2d(2, 3, 1, dtype=torch.float64)  # no padding after: exact, reflect kept
    torch.testing.assert_close(to_module(_merge([first, pw]), dtype=torch.float64)(x),
                               pw(first(x)))
    zero_after = nn.Conv2d(2, 2, 1, padding=1, bias=False, dtype=torch.float64)
    with pytest.raises(MergeError, match="padding modes do not compose"):
        _merge([nn.Conv2d(2, 2, 1, bias=False, dtype=torch.float64), first, zero_after])
    reflect_after = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", dtype=torch.float64)
    with pytest.raises(MergeError, match="not pointwise"):
        _merge([first, reflect_after])


def test_affine_and_residual_sums():
    torch.manual_seed(1)
    a = nn.Conv2d(4, 8, 1, dtype=torch.float64)
    b = nn.Conv2d(8, 4, 3, padding=1, groups=4, dtype=torch.float64)
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    scale, shift = torch.rand(8, dtype=torch.float64) + 0.5, torch.randn(8, dtype=torch.float64)
    spec = then_affine(_merge([a]), scale, shift)
    branch = then_conv(spec, conv_spec(b, "b"), "b", "seg", "move")
    total = plus(identity_spec(4, 2), branch, "seg", "the addition")
    mid = a(x) * scale[:, None, None] + shift[:, None, None]
    padded = F.conv2d(F.pad(a(F.pad(x, (1,) * 4)) * scale[:, None, None]
                            + shift[:, None, None], (0,) * 4), b.weight, b.bias, groups=4)
    torch.testing.assert_close(to_module(total, dtype=torch.float64)(x), x + padded)
    assert (x + b(mid) - to_module(total, dtype=torch.float64)(x))[..., 1:-1, 1:-1].abs().max() \
        < 1e-10
    # a projection shortcut and a strided branch of one input: two kernels on one grid
    proj = nn.Conv2d(4, 6, 1, stride=2, dtype=torch.float64)
    main = nn.Conv2d(4, 6, 3, stride=2, padding=1, dtype=torch.float64)
    both = plus(_merge([proj]), _merge([main]), "seg", "the addition")
    torch.testing.assert_close(to_module(both, dtype=torch.float64)(x), proj(x) + main(x))
    with pytest.raises(MergeError, match="differ in stride"):
        plus(identity_spec(4, 2), _merge([nn.Conv2d(4, 4, 1, stride=2)]), "seg", "the add")


def test_asymmetric_padding_gets_a_padding_module():
    a = nn.Conv1d(2, 2, 2, padding="same", dtype=torch.float64)  # pads (0, 1)
    b = nn.Conv1d(2, 2, 1, dtype=torch.float64)
    merged = to_module(_merge([a, b]), dtype=torch.float64)
    assert isinstance(merged, nn.Sequential) and isinstance(merged[0], nn.ZeroPad1d)
    x = torch.randn(2, 2, 9, dtype=torch.float64)
    ref = b(F.conv1d(F.pad(x, (0, 1)), a.weight, a.bias))  # torch warns on 'same' here
    torch.testing.assert_close(merged(x), ref)
