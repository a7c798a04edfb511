"""Every integer and float option of every measurement is checked up front: a ValueError
naming the argument, the value and what is allowed, never a TypeError from deep inside (on
main: jacobian_spectrum(k='4') -> "'<' not supported between instances of 'str' and
'int'", k=2.0 -> "slice indices must be integers")."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import signalprop as sp
from signalprop.measure import lanczos

CE = nn.CrossEntropyLoss()
MODEL = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
X, Y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
CONV = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())

CALLS = {
    "spp": lambda **kw: sp.spp(MODEL, X, **kw),
    "gradient_spp": lambda **kw: sp.gradient_spp(MODEL, X, Y, loss_fn=CE, **kw),
    "gradient_gram": lambda **kw: sp.gradient_gram(MODEL, X, Y, loss_fn=CE, **kw),
    "gradient_confusion": lambda **kw: sp.gradient_confusion(MODEL, X, Y, loss_fn=CE, **kw),
    "jacobian_spectrum": lambda **kw: sp.jacobian_spectrum(MODEL, X, **kw),
    "hessian_extremes": lambda **kw: sp.hessian_extremes(MODEL, X, Y, loss_fn=CE, **kw),
    "batch_independence": lambda **kw: sp.batch_independence(MODEL, X, **kw),
    "region_density": lambda **kw: sp.region_density(MODEL, X, **kw),
    "conv_spectra": lambda **kw: sp.conv_spectra(CONV, torch.randn(1, 2, 4, 4), **kw),
    "spatial_jacobian": lambda **kw: sp.spatial_jacobian(CONV, torch.randn(1, 2, 4, 4),
                                                         source=(0, 0), **kw),
}

INT = "must be an integer"
# (measurement, option, bad value, expected message)
CASES = [
    *[(m, "channel_dim", v, rf"channel_dim {INT}, got {r}")
      for m in ("spp", "gradient_spp", "spatial_jacobian") for v, r in (("1", r"'1' \(str\)"),
                                                    (1.0, r"1.0 \(float\)"),
                                                    (True, r"True \(bool\)"))],
    *[(m, "k", v, rf"k {INT} >= 1, got {r}") for m in ("jacobian_spectrum", "hessian_extremes")
      for v, r in (("4", r"'4' \(str\)"), (2.0, r"2.0 \(float\)"), (0, "0"), (None, "None"))],
    *[(m, "steps", v, rf"steps {INT} >= 1 or None, got {r}")
      for m in ("jacobian_spectrum", "hessian_extremes")
      for v, r in (("3", r"'3' \(str\)"), (3.5, r"3.5 \(float\)"), (0, "0"))],
    *[("conv_spectra", "steps", v, rf"steps {INT} >= 1, got {r}")
      for v, r in (("3", r"'3' \(str\)"), (3.5, r"3.5 \(float\)"), (0, "0"))],
    ("conv_spectra", "method", "svd", r"method must be one of \('auto', 'fft', "),
    ("conv_spectra", "progress", "yes", r"progress must be True or False, got 'yes'"),
    *[("jacobian_spectrum", "probes", v, rf"probes {INT} >= 1, got {r}")
      for v, r in (("8", r"'8' \(str\)"), (8.0, r"8.0 \(float\)"), (-1, "-1"))],
    *[(m, "seed", v, rf"seed {INT} in \[0, {2**63 - 1}\], got {r}")
      for m in ("gradient_spp", "jacobian_spectrum", "hessian_extremes", "batch_independence",
                "region_density", "conv_spectra")
      for v, r in (("0", r"'0' \(str\)"), (1.5, r"1.5 \(float\)"), (-1, "-1"))],
    *[("gradient_confusion", "bins", v, rf"bins {INT} >= 1, got {r}")
      for v, r in (("10", r"'10' \(str\)"), (10.0, r"10.0 \(float\)"), (0, "0"))],
    *[("gradient_confusion", "quantiles", v, r)
      for v, r in (("0.5", r"quantiles must be a sequence of numbers, got '0.5'"),
                   ([0.5, "0.9"], r"quantiles\[1\] must be a finite number in \[0.0, 1.0\], "
                                  r"got '0.9' \(str\)"),
                   ([0.5, float("nan")], r"quantiles\[1\] must be a finite number in .*got nan"),
                   ((1.5,), r"quantiles\[0\] must be .* in \[0.0, 1.0\], got 1.5"))],
    *[("batch_independence", "index", v, rf"index {INT} in \[-5, 4\], got {r}")
      for v, r in (("0", r"'0' \(str\)"), (0.0, r"0.0 \(float\)"), (5, "5"))],
    *[("batch_independence", "tolerance", v, rf"tolerance must be a finite number >= 0.0, got {r}")
      for v, r in (("1e-5", r"'1e-5' \(str\)"), (float("inf"), "inf"), (-1.0, "-1.0"))],
    *[(m, "progress", v, rf"progress must be True or False, got {r}")
      for m in ("spp", "gradient_spp") for v, r in (("yes", r"'yes' \(str\)"), (1, r"1 \(int\)"))],
    ("gradient_gram", "per_layer", "no", r"per_layer must be True or False, got 'no' \(str\)"),
    ("gradient_gram", "method", "fast", r"method must be one of \('auto', 'factor', "),
    *[(m, "dropout", "off", r"dropout must be one of \('auto', 'eval', 'error'\), got 'off'")
      for m in ("spp", "gradient_spp", "gradient_gram", "gradient_confusion",
                "jacobian_spectrum", "hessian_extremes", "spatial_jacobian")],
    *[(m, "label", 3, r"label must be a string or None, got 3 \(int\)")
      for m in sorted(CALLS) if m != "region_density"],
]


@pytest.mark.parametrize("name,option,value,match", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]!r}" for c in CASES])
def test_bad_option_is_a_value_error_naming_it(name, option, value, match):
    with pytest.raises(ValueError, match=match):
        CALLS[name](**{option: value})


def test_every_int_and_float_option_of_every_measurement_is_covered():
    covered = {(c[0], c[1]) for c in CASES}
    numeric = {"channel_dim", "k", "steps", "probes", "seed", "bins", "quantiles", "index",
               "tolerance"}
    import inspect
    for name in sp.measure.MEASUREMENTS:
        params = inspect.signature(getattr(sp.measure, name)).parameters
        for option in numeric & set(params):
            assert (name, option) in covered, (name, option)


def test_integers_of_other_types_are_accepted():
    res = sp.jacobian_spectrum(MODEL, X, k=np.int64(2), steps=torch.tensor(2), probes=np.int32(3))
    assert res.steps == 2 and type(res.block) is int and len(res.top[0]) == 2
    assert sp.JacobianSpectrumResult.from_json(res.to_json()) == res
    assert sp.batch_independence(MODEL, X, index=np.int64(-1), tolerance=np.float32(1e-4)).index == 4
    assert sp.spp(MODEL, X, channel_dim=np.int64(1)).channel_dim == 1


def test_lanczos_checks_its_arguments():
    with pytest.raises(ValueError, match=r"block must be an integer >= 1, got '2' \(str\)"):
        lanczos(lambda v: v, 1, 3, 2, dtype=torch.float64, block="2")
    with pytest.raises(ValueError, match=r"steps must be an integer >= 1, got 2.0 \(float\)"):
        lanczos(lambda v: v, 1, 3, 2.0, dtype=torch.float64)
