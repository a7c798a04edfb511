"""Diagnoses on real models: each appears where the model has the problem, and not after
the fix."""

import torch

import signalprop as sp
from signalprop.report import apply_fix, measure_all


def _kinds(measurements):
    return {d.kind for d in measurements.diagnoses}


def test_bn_resnet_is_batch_dependent_through_batchnorm(reports):
    r = reports["bn"]
    dep = [d for d in r.diagnoses if d.kind == "batch_dependence"]
    assert len(dep) == 1 and dep[0].title == "batch dependence through BatchNorm2d"
    assert dep[0].block == "stages.0.0.norm1"
    assert not {"mean_shift", "variance_growth", "nonfinite"} & _kinds(r.before)


def test_unnormalized_resnet_mean_shift_variance_growth_and_gradients(reports):
    r = reports["none"]
    assert {"mean_shift", "variance_growth", "exploding_gradients"} <= _kinds(r.before)
    assert "batch_dependence" not in _kinds(r.before)
    # the rule by hand on the measured numbers: squared mean > variance from the block on
    shift = next(d for d in r.diagnoses if d.kind == "mean_shift")
    recs = r.before.spp.records
    start = next(i for i, b in enumerate(recs) if b.name == shift.block)
    assert all(b.avg_sq_mean > b.avg_var for b in recs[start:])
    assert recs[start - 1].avg_sq_mean <= recs[start - 1].avg_var
    # the fix: to_normfree, after which none of those remain
    assert r.fix_summary.startswith("sp.convert.to_normfree(model)")
    assert r.after is not None and r.after.diagnoses == []


def test_converted_resnet_has_none_of_those(reports):
    r = reports["converted"]
    assert r.diagnoses == []
    assert r.before.prediction is not None  # converted ResNetV2 keeps its theory overlay


def test_plain_networks_explode_or_vanish_and_the_critical_init_fixes_them():
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    net = sp.models.mlp(depth=16, width=64, activation="relu")
    with torch.no_grad():
        for m in net.hidden_layers():
            m.weight.mul_(2 ** 0.5)  # sigma_w^2 = 4: chi_1 = 2 for ReLU
    net.sigma_w2 = 4.0
    before = measure_all(net, x, "mlp sw2=4")
    grad = next(d for d in before.diagnoses if d.kind == "exploding_gradients")
    assert before.summary["theory_chi_1"] == 2.0
    assert "sigma_w^2 = 2 (chi_1 = 1)" in grad.message
    assert grad.fix_code == 'sp.nn.init.critical_(model, "relu")'
    fixed, what = apply_fix(net, before)
    assert what.startswith('sp.nn.init.critical_(model, "relu")')
    # the init fixes the scale; a deep ReLU MLP still correlates its examples (mean shift),
    # which Scaled WS (to_normfree) addresses
    after = _kinds(measure_all(fixed, x, "fixed"))
    assert not {"exploding_gradients", "vanishing_gradients", "variance_growth"} & after
    torch.manual_seed(0)
    small = sp.models.mlp(depth=16, width=64, activation="relu", init="torch")
    assert "vanishing_gradients" in _kinds(measure_all(small, x, "torch init"))


def test_nonfinite_values_are_located():
    net = sp.models.mlp(depth=12, width=32, activation="relu")
    with torch.no_grad():
        for m in net.hidden_layers():
            m.weight.mul_(1e4)
    m = measure_all(net, torch.randn(8, 32), "huge")
    bad = next(d for d in m.diagnoses if d.kind == "nonfinite")
    first = m.spp.first_nonfinite
    assert bad.block == first.name and first.index > 0
    assert bad.fix_code == 'sp.nn.init.critical_(model, "relu")'


def test_model_summary(reports):
    s = reports["bn"].before.summary
    assert s["parameters"] > 0 and s["depth"] == 5
    assert s["block_types"] == {"Sequential": 1, "PreActBottleneck": 4}
    assert s["discovery"] == "ResNetV2.signal_blocks()" and s["activation"] == "relu"


def test_a_foreign_model_gets_its_report_without_a_prediction(tmp_path):
    torch.manual_seed(0)
    layers = []
    for _ in range(12):
        layers += [torch.nn.Linear(32, 32), torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(32, 5))  # torch init: sigma_w^2 = 1/3
    r = sp.report.build_report(net, torch.randn(8, 32), tmp_path, fix=True, label="tanh mlp")
    assert r.before.prediction is None and "no theory prediction for Sequential" in r.before.notes[0]
    assert "no theory prediction for Sequential" in r.path.read_text()
    assert r.before.summary["activation"] == "tanh"
    d = next(d for d in r.diagnoses if d.kind == "vanishing_gradients")
    assert "Critical initialization for tanh is sigma_w^2 = 1 " in d.message
    assert r.fix_summary.startswith('sp.nn.init.critical_(model, "tanh")')
    assert not {"vanishing_gradients", "exploding_gradients"} & _kinds(r.after)


def test_the_fix_lines_run_as_printed():
    torch.manual_seed(0)
    net = sp.models.resnetv2([2, 2], norm="none", stem="cifar", width=0.25, num_classes=10)
    x = torch.randn(8, 3, 16, 16)
    lines = {d.fix_code for d in measure_all(net, x, "none").diagnoses}
    assert lines == {"model, conversion = sp.convert.to_normfree(model)"}
    namespace = {"sp": sp, "model": net}
    exec(lines.pop(), namespace)
    assert measure_all(namespace["model"], x, "fixed").diagnoses == []
    mlp = sp.models.mlp(depth=16, width=64, init="torch")
    line = next(d.fix_code for d in measure_all(mlp, torch.randn(16, 64), "mlp").diagnoses
                if d.kind == "vanishing_gradients")
    namespace = {"sp": sp, "model": mlp}
    exec(line, namespace)
    assert "vanishing_gradients" not in _kinds(measure_all(mlp, torch.randn(16, 64), "mlp"))
