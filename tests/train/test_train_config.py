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
    ({"optimizer": "adamw", "steps": 1}, "optimizer='adamw' is not allowed; valid: sgd, nesterov, adam, nag"),
    ({"schedule": "linear", "steps": 1}, "schedule='linear' is not allowed; valid: constant, step, cosine, warmup"),
    ({"lr": -1, "steps": 1}, "lr must be > 0, got -1.0"),
    ({"lr": "fast", "steps": 1}, "lr must be a number, got 'fast'"),
    ({"batch_size": 2.5, "steps": 1}, "batch_size must be an integer, got 2.5"),
    ({"momentum": 1.0, "steps": 1}, r"momentum must be in \[0, 1\), got 1.0"),
    ({"betas": [0.9], "steps": 1}, r"betas must be two numbers in \[0, 1\), got \(0.9,\)"),
    ({"betas": 0.9, "steps": 1}, r"betas must be two numbers in \[0, 1\), got 0.9"),
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
    with pytest.raises(ValueError, match="d.yaml is not valid YAML"):
        read_mapping(tmp_path / "d.yaml")
    with pytest.raises(ValueError, match="cannot read .*nope.yaml"):
        read_mapping(tmp_path / "nope.yaml")
