"""conv_spectrum against the dense operator built by applying the layer to basis vectors."""

import math

import pytest
import torch
import torch.nn as nn

from signalprop.measure import NonFiniteError, conv_spectrum
from signalprop.nn import OrthoConv2d, ScaledStdConv2d
from signalprop.results import ConvSpectrumResult


def dense_operator(layer: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """(rows, cols) matrix of the layer's linear part: layer(e_i) - layer(0) per basis e_i."""
    layer = layer.double()
    n = math.prod(shape)
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        out = layer(eye) - layer(torch.zeros(1, *shape, dtype=torch.float64))
    return out.reshape(n, -1).T


def reference(layer: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.linalg.svdvals(dense_operator(layer, shape))


CASES = {
    # name: (layer factory, input shape, expected method)
    "circular 3x3": (lambda: nn.Conv2d(3, 5, 3, padding=1, padding_mode="circular"),
                     (3, 6, 6), "fft"),
    "circular stride 2": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1,
                                            padding_mode="circular"), (4, 8, 8), "fft"),
    "circular stride 3, k=2": (lambda: nn.Conv2d(2, 5, 2, stride=3, padding=0,
                                                 padding_mode="circular"), (2, 9, 6), "fft"),
    "circular groups, dilation, non-square": (
        lambda: nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 4), dilation=(1, 2),
                          groups=2, padding_mode="circular"), (4, 8, 6), "fft"),
    "circular even kernel 'same'": (lambda: nn.Conv2d(3, 3, 2, padding="same",
                                                      padding_mode="circular"), (3, 5, 5), "fft"),
    "circular 1d": (lambda: nn.Conv1d(3, 4, 5, stride=2, padding=2, padding_mode="circular"),
                    (3, 10), "fft"),
    "circular 3d": (lambda: nn.Conv3d(2, 3, 3, padding=1, padding_mode="circular"),
                    (2, 4, 4, 4), "fft"),
    "kernel wider than the input": (lambda: nn.Conv1d(2, 2, 7, padding=3,
                                                      padding_mode="circular"), (2, 4), "fft"),
    "zeros 3x3": (lambda: nn.Conv2d(3, 5, 3, padding=1), (3, 6, 6), "dense"),
    "valid stride 2": (lambda: nn.Conv2d(3, 4, 3, stride=2), (3, 7, 7), "dense"),
    "reflect 1d": (lambda: nn.Conv1d(3, 5, 4, stride=2, padding=1, padding_mode="reflect"),
                   (3, 9), "dense"),
    "replicate": (lambda: nn.Conv2d(2, 3, 3, padding=2, dilation=2,
                                    padding_mode="replicate"), (2, 5, 4), "dense"),
    "1x1 stride 2": (lambda: nn.Conv2d(4, 8, 1, stride=2), (4, 5, 5), "pointwise"),
    "1x1 grouped, more outputs": (lambda: nn.Conv2d(4, 12, 1, groups=2), (4, 3, 3),
                                  "pointwise"),
    "3x3 on a 1x1 input": (lambda: nn.Conv2d(4, 8, 3, padding=1), (4, 1, 1), "pointwise"),
    "transposed stride 2": (lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1,
                                                       output_padding=1), (4, 3, 3), "dense"),
    "transposed 1d grouped": (lambda: nn.ConvTranspose1d(4, 6, 3, groups=2), (4, 5), "dense"),
    # float64: its weights sum to 0 per unit (a zero singular value at frequency 0),
    # which a float32 standardization leaves at 1e-7
    "scaled WS": (lambda: ScaledStdConv2d(3, 4, 3, padding=1, padding_mode="circular",
                                          gain_init=1.3, dtype=torch.float64), (3, 4, 4), "fft"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_singular_value_matches_the_dense_operator(name):
    make, shape, method = CASES[name]
    layer = make()
    res = conv_spectrum(layer, shape)
    ref = reference(make_like(layer), shape)
    assert res.method == method and res.exact
    assert res.n_values == ref.numel()
    assert torch.allclose(res.singular_values, ref, rtol=0, atol=1e-10 * float(ref[0]))
    assert res.sigma_max == pytest.approx(float(ref[0]), rel=1e-12)
    assert res.sigma_min == pytest.approx(float(ref[-1]), abs=1e-12 * float(ref[0]))
    # the extremes alone (Gram eigenvalues): intervals that hold the SVD values
    fast = conv_spectrum(layer, shape, values=False)
    assert fast.singular_values is None
    assert fast.sigma_max_bounds[0] <= float(ref[0]) <= fast.sigma_max_bounds[1]
    assert fast.sigma_min_bounds[0] <= float(ref[-1]) + 1e-12 <= fast.sigma_min_bounds[1] + 2e-12


def make_like(layer: nn.Module) -> nn.Module:
    """A float64 copy (the reference must not change the layer under test)."""
    import copy

    return copy.deepcopy(layer)


def test_exact_methods_agree_where_several_apply():
    conv = nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular")
    fft = conv_spectrum(conv, (4, 5, 5), method="fft")
    dense = conv_spectrum(conv, (4, 5, 5), method="dense")
    assert torch.allclose(fft.singular_values, dense.singular_values, atol=1e-12)
    one = nn.Conv2d(4, 6, 1, stride=2, bias=False)
    pw, de = conv_spectrum(one, (4, 6, 6)), conv_spectrum(one, (4, 6, 6), method="dense")
    assert pw.method == "pointwise"
    assert torch.allclose(pw.singular_values, de.singular_values, atol=1e-12)


@pytest.mark.parametrize("name", ["zeros 3x3", "valid stride 2", "reflect 1d", "replicate",
                                  "transposed stride 2"])
def test_bounds_bracket_the_extremes(name):
    make, shape, _ = CASES[name]
    layer = make()
    ref = reference(make_like(layer), shape)
    res = conv_spectrum(layer, shape, method="bounds", steps=8)
    assert res.method == "bounds" and not res.exact and res.singular_values is None
    lo, hi = res.sigma_max_bounds
    assert lo <= float(ref[0]) * (1 + 1e-12) and float(ref[0]) <= hi * (1 + 1e-12)
    assert res.sigma_min_bounds[0] == 0.0
    assert float(ref[-1]) <= res.sigma_min_bounds[1] * (1 + 1e-9)
    # enough Lanczos steps: the lower bound converges to sigma_max
    full = conv_spectrum(layer, shape, method="bounds", steps=res.n_values)
    assert full.sigma_max == pytest.approx(float(ref[0]), rel=1e-8)


def test_upper_bound_holds_for_random_inputs_monte_carlo():
    # ||conv(x)|| <= sigma_max_upper * ||x|| for every x: 2000 random and 50 adversarial
    # (power-iterated) inputs never exceed it
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=False).double()
    res = conv_spectrum(conv, (3, 15, 15), method="bounds")
    x = torch.randn(2000, 3, 15, 15, dtype=torch.float64)
    with torch.no_grad():
        ratio = conv(x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert float(ratio.max()) <= res.sigma_max_bounds[1]
    v = torch.randn(50, 3, 15, 15, dtype=torch.float64, requires_grad=True)
    for _ in range(30):
        (g,) = torch.autograd.grad(conv(v).square().sum(), v)
        v = (g / g.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)).detach().requires_grad_(True)
    with torch.no_grad():
        best = float((conv(v).flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1)).max())
    assert best <= res.sigma_max_bounds[1]
    assert res.sigma_max_bounds[0] >= 0.99 * best  # Lanczos is at least as good as 30 powers


def test_orthoconv_is_exactly_orthogonal():
    layer = OrthoConv2d(4, 8, 3, stride=2, dtype=torch.float64)
    res = conv_spectrum(layer, (4, 6, 6))
    ref = reference(make_like(layer), (4, 6, 6))
    assert res.method == "fft" and res.n_values == ref.numel() == 72
    assert torch.allclose(res.singular_values, torch.ones(72, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ref, torch.ones(72, dtype=torch.float64), atol=1e-12)


def test_result_round_trips_and_reports_condition():
    res = conv_spectrum(nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"), (2, 4, 4),
                        label="c")
    back = ConvSpectrumResult.from_json(res.to_json())
    assert torch.equal(back.singular_values, res.singular_values)
    assert back.condition == pytest.approx(res.sigma_max / res.sigma_min)
    assert '"condition"' in res.to_json()
    assert res.to_csv().splitlines()[0].startswith("label,layer,method,exact,n_values")


# ---------------------------------------------------------------- bad input

def test_refuses_other_modules_and_bad_shapes():
    with pytest.raises(ValueError, match="torch.nn convolution"):
        conv_spectrum(nn.Linear(3, 3), (3,))
    conv = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="takes 3 input channels"):
        conv_spectrum(conv, (2, 8, 8))
    with pytest.raises(ValueError, match=r"input_shape must be \(C, n, n\)"):
        conv_spectrum(conv, (3, 8))
    with pytest.raises(ValueError, match="smaller than the receptive field"):
        conv_spectrum(conv, (3, 2, 2))
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'fft'"):
        conv_spectrum(conv, (3, 8, 8), method="svd")
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        conv_spectrum(conv, (3, 8, 8), steps=0)
    with pytest.raises(ValueError, match="max_dense must be an integer >= 1"):
        conv_spectrum(conv, (3, 8, 8), max_dense=1.5)
    with pytest.raises(ValueError, match="lazy"):
        conv_spectrum(nn.LazyConv2d(4, 3), (3, 8, 8))


def test_refuses_methods_that_do_not_apply():
    with pytest.raises(ValueError, match="method='fft' needs circular padding"):
        conv_spectrum(nn.Conv2d(3, 4, 3, padding=1), (3, 8, 8), method="fft")
    with pytest.raises(ValueError, match="method='pointwise' needs a kernel with one live"):
        conv_spectrum(nn.Conv2d(3, 4, 3, padding=1), (3, 8, 8), method="pointwise")
    with pytest.raises(ValueError, match="OrthoConv2d is a Fourier-domain layer"):
        conv_spectrum(OrthoConv2d(2, 2, 3), (2, 4, 4), method="dense")


def test_dense_refuses_huge_layers_before_allocating():
    conv = nn.Conv2d(512, 512, 3, padding=1)
    with pytest.raises(ValueError, match=r"131072 x 131072 matrix \(17,179,869,184 float64"):
        conv_spectrum(conv, (512, 16, 16), method="dense")
    with pytest.raises(ValueError, match="above max_dense=100"):
        conv_spectrum(nn.Conv2d(2, 2, 3), (2, 4, 4), method="dense", max_dense=100)


def test_nonfinite_kernel_is_reported():
    conv = nn.Conv2d(2, 2, 3)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN/Inf"):
        conv_spectrum(conv, (2, 5, 5))


def test_a_subclass_with_its_own_forward_is_caught():
    class Doubled(nn.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(ValueError, match="not the convolution by its weight"):
        conv_spectrum(Doubled(2, 2, 3, padding=1), (2, 4, 4))
