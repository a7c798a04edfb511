"""TrainConfig: validation messages, dotted keys, round trips, run keys, config files."""

import json

import pytest

from signalprop.train import TrainConfig
from signalprop.train.config import read_mapping


def test_round_trip_and_dotted_keys():
    cfg = TrainConfig.from_dict({"model": "resnetv2_50", "model_args.width": 0.25,
                                 "model_args.norm": "nf", "betas": [0.8, 0.99], "steps": 7})
    assert cfg.model_args == {"width": 0.25, "norm": "nf"} and cfg.betas == (0.8, 0.99)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.replace(**{"model_args.width": 0.5}).model_args == {"width": 0.5, "norm": "nf"}
    assert isinstance(TrainConfig(lr=1, steps=2).lr, float)


def test_run_key_ignores_cadence_but_not_training_fields():
    a = TrainConfig(steps=10)
    assert a.run_key() == TrainConfig(steps=10, log_every=3, checkpoint_every=5).run_key()
    assert a.run_key() != TrainConfig(steps=10, seed=1).run_key()
    assert a.run_key() != TrainConfig(steps=10, model_args={"width": 0.5}).run_key()


@pytest.mark.parametrize("data,msg", [
    ({"lrr": 0.1}, r"unknown config key 'lrr' \(did you mean lr\?\); valid keys: model, model_args, dataset"),
    ({"optimizer": "adamw", "steps": 1}, r"optimizer='adamw' is not allowed \(did you mean 'adam'\?\); valid: sgd, nesterov, adam, nag"),
    ({"schedule": "linear", "steps": 1}, "schedule='linear' is not allowed; valid: constant, step, cosine, warmup"),
    ({"lr": -1, "steps": 1}, "lr must be > 0, got -1.0"),
    ({"lr": "fast", "steps": 1}, "lr must be a number, got 'fast'"),
    ({"batch_size": 2.5, "steps": 1}, "batch_size must be an integer, got 2.5"),
    ({"momentum": 1.0, "steps": 1}, r"momentum must be in \[0, 1\), got 1.0"),
    ({"betas": [0.9], "steps": 1}, r"betas must be two numbers in \[0, 1\), got \(0.9,\)"),
    ({"betas": 0.9, "steps": 1}, r"betas must be two numbers in \[0, 1\) \(a list\), got 0.9"),
    ({"milestones": ["half"], "steps": 1}, "milestones must be a number, got 'half'"),
    ({}, "set exactly one of epochs and steps, got epochs=None, steps=None"),
    ({"epochs": 1, "steps": 1}, "set exactly one of epochs and steps"),
    ({"steps": 0}, "steps must be >= 1, got 0"),
    ({"schedule": "warmup", "steps": 5}, "schedule 'warmup' needs warmup_steps >= 1, got 0"),
    ({"milestones": [0.8, 0.2], "steps": 5}, r"milestones must be increasing fractions in \(0, 1\)"),
    ({"agc_clipping": 0, "steps": 5}, "agc_clipping must be > 0, got 0.0"),
    ({"lr.x": 1, "steps": 5}, "config key 'lr.x': only model_args, dataset_args and objective_args take dotted sub-keys"),
])
def test_bad_values_name_the_key_and_the_allowed_values(data, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig.from_dict(data)


def test_read_mapping_yaml_json_and_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("lr: 0.5\nmodel_args: {width: 2}\n")
    (tmp_path / "b.json").write_text('{"lr": 0.5}')
    (tmp_path / "c.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "d.yaml").write_text("lr: [1\n")
    assert read_mapping(tmp_path / "a.yaml") == {"lr": 0.5, "model_args": {"width": 2}}
    assert read_mapping(tmp_path / "b.json") == {"lr": 0.5}
    with pytest.raises(ValueError, match="must hold a mapping of keys to values, got list"):
        read_mapping(tmp_path / "c.yaml")
    with pytest.raises(ValueError, match=r"d.yaml, line 2, column 1: not valid YAML: expected ',' or '\]', but got '<stream end>' \(while parsing a flow sequence\)"):
        read_mapping(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("")
    with pytest.raises(ValueError, match="e.yaml is empty: it must hold a mapping of keys to values"):
        read_mapping(tmp_path / "e.yaml")
    with pytest.raises(ValueError, match="cannot read .*nope.yaml"):
        read_mapping(tmp_path / "nope.yaml")


def test_yaml_reads_exponent_numbers_as_floats_as_yaml_1_2_does(tmp_path):
    # YAML 1.1 (PyYAML) would read every exponent number here but 1.0e+8 as a string
    (tmp_path / "run.yaml").write_text("lr: 1e6\nweight_decay: 5e-4\neps: 1.0e-8\nmin_lr: +2E-3\ngamma: 1.0e+0\n"
                                       "steps: 100\nmodel_args: {alpha: 1e-3, name: 1e6x, version: '1e3'}\n")
    data = read_mapping(tmp_path / "run.yaml")
    assert data == {"lr": 1e6, "weight_decay": 5e-4, "eps": 1e-8, "min_lr": 2e-3, "gamma": 1.0, "steps": 100,
                    "model_args": {"alpha": 1e-3, "name": "1e6x", "version": "1e3"}}
    assert isinstance(data["steps"], int)
    assert TrainConfig.from_dict(data).lr == 1e6


def test_numbers_written_as_strings_are_read_as_the_numbers_they_spell():
    cfg = TrainConfig(lr="1e-3", steps="1e3", batch_size="16", agc_clipping="0.01", betas=["0.8", "0.9"])
    assert (cfg.lr, cfg.steps, cfg.batch_size, cfg.agc_clipping, cfg.betas) == (1e-3, 1000, 16, 0.01, (0.8, 0.9))
    assert isinstance(cfg.steps, int) and isinstance(cfg.lr, float)
    with pytest.raises(ValueError, match="steps must be an integer, got '12.5'"):
        TrainConfig(steps="12.5")
    with pytest.raises(ValueError, match="lr must be a number, got '1e6x'"):
        TrainConfig(lr="1e6x", steps=1)


@pytest.mark.parametrize("data,msg", [
    ({"seed": -1, "steps": 1}, "seed must be >= 0, got -1"),
    ({"dataset": 3, "steps": 1}, r"dataset must be a dataset name such as 'digits' \(.*\), got 3"),
    ({"optimizer": "SGD", "steps": 1}, r"optimizer='SGD' is not allowed \(did you mean 'sgd'\?\)"),
    ({"schedule": "cosin", "steps": 1}, r"schedule='cosin' is not allowed \(did you mean 'cosine'\?\)"),
    ({"milestones": "0.5", "steps": 1}, r"milestones must be increasing fractions in \(0, 1\) \(a list\), got '0.5'"),
    ({"steps": float("inf")}, "steps must be finite, got inf"),
])
def test_more_mistakes_name_the_key_the_value_and_what_is_allowed(data, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig.from_dict(data)


def test_an_empty_args_mapping_in_yaml_means_no_arguments(tmp_path):
    (tmp_path / "run.yaml").write_text("model_args:\ndataset_args:\nsteps: 1\n")
    cfg = TrainConfig.from_dict(read_mapping(tmp_path / "run.yaml"))
    assert cfg.model_args == {} and cfg.dataset_args == {}


@pytest.mark.parametrize("text,msg", [
    ("lr: 0.1\nsteps: 5\nlr: 0.2\n", r"run.yaml, line 3: duplicate key 'lr' \(first on line 1\); keep one of them"),
    ("model_args:\n  width: 1\n  depth: 2\n  width: 2\n", r"run.yaml, line 4: duplicate key 'width' \(first on line 2\)"),
    ("model_args: {width: 1, width: 2}\n", r"run.yaml, line 1: duplicate key 'width' \(first on line 1\)"),
])
def test_duplicate_yaml_keys_are_refused_with_their_lines(tmp_path, text, msg):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ValueError, match=msg):
        read_mapping(tmp_path / "run.yaml")


def test_duplicate_json_keys_and_yaml_merge_keys(tmp_path):
    (tmp_path / "run.json").write_text('{"lr": 0.1, "model_args": {"w": 1, "w": 2}}')
    with pytest.raises(ValueError, match=r"run.json: duplicate key 'w'; keep one of them"):
        read_mapping(tmp_path / "run.json")
    # a merge key ('<<') may be overridden on purpose: that is not a duplicate
    (tmp_path / "merge.yaml").write_text("a: &base {lr: 0.1, steps: 5}\nb:\n  <<: *base\n  lr: 0.2\n")
    assert read_mapping(tmp_path / "merge.yaml")["b"] == {"lr": 0.2, "steps": 5}
