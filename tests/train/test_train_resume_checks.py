"""A checkpoint is checked before a run resumes from it: every field, the fields against
each other, the run's length and the metrics file. Each damaged or edited file is refused
with a message naming the file and the field; an intact one resumes."""

import copy
import json

import pytest
import torch

from signalprop.train import CheckpointError, TrainConfig, fit, read_metrics

LINEAR = dict(model="torch.nn:Linear", model_args={"in_features": 4, "out_features": 3}, dataset="iris",
              batch_size=16, lr=0.1, steps=6, log_every=4)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(config, run folder, checkpoint state) of a finished 6-step Adam run, shared read-only."""
    cfg = TrainConfig(**LINEAR, optimizer="adam", checkpoint_every=5)
    out = tmp_path_factory.mktemp("run")
    fit(cfg, out, progress=False)
    return cfg, out, torch.load(out / "checkpoint.pt", weights_only=True)


def resume_with(tmp_path, finished, edit):
    """Copy the finished run, apply ``edit(state)`` to its checkpoint and resume it."""
    cfg, out, state = finished
    (tmp_path / "metrics.jsonl").write_text((out / "metrics.jsonl").read_text())
    state = {**state, "optimizer": json_safe_copy(state["optimizer"])}
    edit(state)
    torch.save(state, tmp_path / "checkpoint.pt")
    return fit(cfg, tmp_path, resume=True, progress=False)


def json_safe_copy(opt_state):
    return {"state": {k: dict(v) for k, v in opt_state["state"].items()}, "param_groups": opt_state["param_groups"]}


def test_an_intact_checkpoint_resumes(tmp_path, finished):
    result = resume_with(tmp_path, finished, lambda s: None)
    assert result.status == "completed" and result.resumed_from == 6 and result.step == 6
    assert finished[2]["log_step"] == 6 and finished[2]["window"][2] == 0  # logged at the end


def drop(key):
    return lambda s: s.pop(key)


def put(key, value):
    return lambda s: s.update({key: value})


def adam_steps(n):
    def edit(s):
        for v in s["optimizer"]["state"].values():
            v["step"] = torch.tensor(float(n))
    return edit


@pytest.mark.parametrize("edit,msg", [
    (drop("config"), r"checkpoint .*checkpoint.pt has no field 'config' \(it has step, model, optimizer, rng, seconds, window, log_step\): it was not written by signalprop.train.fit; delete it to start the run over"),
    (drop("step"), r"checkpoint.pt is not a signalprop checkpoint \(it has no field 'step'; fields: model, optimizer,"),
    (put("step", "6"), r"checkpoint .*checkpoint.pt: field 'step' must be an integer, got str; it is damaged, was edited or belongs to another run: delete it"),
    (put("step", -3), r"field 'step' is -3, negative"),
    (put("step", 1000), r"field 'step' is 1000, more than the run's 6 steps"),
    (put("step", 5), r"field 'step' is 5, but the last train record was at step 6 and 0 steps were taken since"),
    (put("window", [1.0, 2.0]), r"field 'window' must be three non-negative numbers, got \[1.0, 2.0\]"),
    (put("config", "{not json"), r"field 'config' is not JSON"),
    (put("config", "[1, 2]"), r"field 'config' must be a JSON mapping, got list"),
    (put("rng", [[1, 2]]), r"field 'rng' must hold uint8 tensors"),
    (put("model", {"weight": torch.zeros(3, 5), "bias": torch.zeros(3)}), r"field 'model' does not fit the model \(Error\(s\) in loading state_dict for Linear: size mismatch for weight"),
])
def test_damaged_or_edited_fields_are_named(tmp_path, finished, edit, msg):
    with pytest.raises(CheckpointError, match=msg):
        resume_with(tmp_path, finished, edit)


def test_a_step_that_disagrees_with_the_optimizer_state(tmp_path, finished):
    def older_checkpoint_edited(s):  # no log_step (as before it was stored), step edited
        s.pop("log_step")
        s["step"] = 4
    with pytest.raises(CheckpointError, match=r"field 'step' is 4, but the optimizer state has taken 6 steps"):
        resume_with(tmp_path, finished, older_checkpoint_edited)
    with pytest.raises(CheckpointError, match=r"field 'step' is 6, but the optimizer state has taken 9 steps"):
        resume_with(tmp_path, finished, adam_steps(9))


def test_a_metrics_file_that_does_not_belong_to_the_checkpoint(tmp_path, finished):
    cfg, out, state = finished
    torch.save(state, tmp_path / "checkpoint.pt")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines[:1]) + "\n")  # only the record of step 4
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint.pt was written after the train record of step 6, but .*metrics.jsonl lacks it \(its last record is step 4\): the two files do not belong together; restore metrics.jsonl or delete checkpoint.pt"):
        fit(cfg, tmp_path, resume=True, progress=False)
    (tmp_path / "metrics.jsonl").unlink()
    with pytest.raises(CheckpointError, match=r"lacks it \(it has no records\)"):
        fit(cfg, tmp_path, resume=True, progress=False)


def test_a_checkpoint_without_log_step_still_resumes(tmp_path, finished):
    assert resume_with(tmp_path, finished, drop("log_step")).status == "completed"


def test_a_damaged_metrics_line_is_named_but_a_torn_last_line_is_dropped(tmp_path):
    rec = json.dumps({"step": 1, "split": "train", "loss": 1.0})
    (tmp_path / "m.jsonl").write_text(f"{rec}\n{{\"step\": 2, \"spl\n")  # a kill tore the last line
    assert read_metrics(tmp_path / "m.jsonl") == [json.loads(rec)]
    (tmp_path / "m.jsonl").write_text(f"{rec}\ngarbage\n{rec}\n")
    with pytest.raises(ValueError, match=r"m.jsonl, line 2: not a JSON record \(Expecting value\); the file is damaged or was edited"):
        read_metrics(tmp_path / "m.jsonl")
    (tmp_path / "m.jsonl").write_text(f"[1, 2]\n{rec}\n")
    with pytest.raises(ValueError, match=r"m.jsonl, line 1: a record must be a JSON object, got '\[1, 2\]'"):
        read_metrics(tmp_path / "m.jsonl")


def test_a_checkpoint_between_log_records_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """At step 4 of a run logging every 3 steps, the window holds one step: 3 + 16 / 16 == 4."""
    import signalprop.train._run as trainer

    saved, real_save = {}, trainer.save_checkpoint
    monkeypatch.setattr(trainer, "save_checkpoint", lambda path, state: (saved.setdefault(state["step"], copy.deepcopy(state)), real_save(path, state)))
    cfg = TrainConfig(**{**LINEAR, "steps": 8, "log_every": 3}, checkpoint_every=4)
    whole = fit(cfg, tmp_path / "whole", progress=False)
    state = saved[4]
    assert state["log_step"] == 3 and state["window"][2] == 16
    run = tmp_path / "resumed"
    run.mkdir()
    torch.save(state, run / "checkpoint.pt")
    kept = [line for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines() if json.loads(line)["step"] <= 4]
    (run / "metrics.jsonl").write_text("\n".join(kept) + "\n")
    resumed = fit(cfg, run, resume=True, progress=False)
    assert resumed.resumed_from == 4
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), whole.model.parameters()))
