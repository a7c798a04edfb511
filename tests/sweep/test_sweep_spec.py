"""Sweep specs: grid x seeds expansion, stable run ids, errors naming the bad key or value."""

import pytest

from signalprop.sweep import SweepSpec

BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris", "steps": 5}


def test_grid_times_seeds_with_labels_and_dotted_keys(tmp_path):
    spec = SweepSpec.from_dict({"base": BASE, "grid": {"lr": [0.1, 0.01], "model_args.bias": [True, False]}, "seeds": [3, 4]})
    runs = spec.runs()
    assert len(runs) == 8 and len({r.run_id for r in runs}) == 8
    assert runs[0].label == "lr=0.1 model_args.bias=True seed=3"
    assert runs[-1].config.model_args == {"in_features": 4, "out_features": 3, "bias": False}
    assert [r.config.seed for r in runs[:2]] == [3, 4]
    # the id is the config's hash: the order of the grid keys does not matter
    swapped = SweepSpec.from_dict({"base": BASE, "grid": {"model_args.bias": [True, False], "lr": [0.1, 0.01]}, "seeds": [3, 4]})
    assert {r.run_id for r in swapped.runs()} == {r.run_id for r in runs}
    assert SweepSpec.from_dict({"base": BASE, "seeds": 3}).seeds == [0, 1, 2]


def test_from_file_defaults_and_relative_out(tmp_path):
    (tmp_path / "exp.yaml").write_text("base: {model: 'torch.nn:Linear', dataset: iris, steps: 2}\ngrid: {lr: [0.1]}\n")
    spec = SweepSpec.from_file(tmp_path / "exp.yaml")
    assert spec.name == "exp" and spec.out == tmp_path / "exp" and len(spec.runs()) == 1
    (tmp_path / "b.yaml").write_text("name: other\nout: results/b\nbase: {model: 'torch.nn:Linear', dataset: iris, steps: 2}\n")
    spec = SweepSpec.from_file(tmp_path / "b.yaml")
    assert spec.name == "other" and spec.out == tmp_path / "results" / "b"


@pytest.mark.parametrize("data,msg", [
    ({"base": BASE, "grdi": {}}, r"unknown sweep key 'grdi' \(did you mean grid\?\); valid keys: name, out, base, grid, seeds"),
    ({"base": {**BASE, "optimiser": "sgd"}}, r"unknown config key 'optimiser' \(did you mean optimizer\?\); valid keys: model,"),
    ({"base": BASE, "grid": {"lr": 0.1}}, "grid key 'lr' must map to a non-empty list of values, got 0.1"),
    ({"base": BASE, "grid": {"lr": []}}, "grid key 'lr' must map to a non-empty list"),
    ({"base": BASE, "grid": {"seed": [1, 2]}}, "grid key 'seed': list the seeds under 'seeds' instead"),
    ({"base": BASE, "grid": {"optimizer": ["sgd", "lion"]}}, r"invalid run \(optimizer='lion', seed=0\): optimizer='lion' is not allowed; valid: sgd, nesterov, adam, nag"),
    ({"base": BASE, "seeds": [1, 1]}, r"seeds must be .* a non-empty list of distinct integers >= 0, got \[1, 1\] \(repeated: 1\)"),
    ({"base": BASE, "seeds": "many"}, r"seeds must be a count >= 1 \(3 means seeds 0, 1, 2\) or a non-empty list of distinct integers >= 0, got 'many'"),
    ({"base": BASE, "grid": {"lr": [0.1, 0.1]}}, r"the grid produces the same run twice \(lr=0.1 seed=0\)"),
])
def test_bad_specs_name_the_key_and_what_is_allowed(data, msg):
    with pytest.raises(ValueError, match=msg):
        SweepSpec.from_dict(data)
