"""Every class of user error is one line on stderr and exit status 2, in every command.

One parametrized test per class of error (a factory that raises, a module that does not
import, bad --model-arg syntax, an --out that cannot be created, a model whose forward
does not take the input, a missing config or spec, usage errors). The model factories
live in a module with a name no other test uses, so an imported copy cannot shadow them.
"""

import textwrap

import pytest

from signalprop.cli import main

NETS = textwrap.dedent("""
    import torch.nn as nn

    def boom(**kwargs):
        raise RuntimeError("factory exploded")

    def mlp(depth=2):
        return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(8, 8), nn.Tanh())])
""")
MLP = ["cli_err_nets:mlp", "--input-shape", "8", "--batch-size", "4"]
IRIS = ["--dataset", "iris", "--batch-size", "16", "--steps", "1"]
# The arguments after the command that make each one runnable but for the error under test.
COMMANDS = {
    "spp": MLP,
    "confusion": [*MLP, "--loss", "mse"],
    "report": MLP,
    "train": ["torch.nn:Linear", "--model-arg", "in_features=4", "--model-arg",
              "out_features=3", *IRIS],
}


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """``run(*argv) -> stderr`` after asserting exit status 2 and one line of error."""
    (tmp_path / "cli_err_nets.py").write_text(NETS)
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.chdir(tmp_path)

    def _run(*argv):
        rc = main([*argv, "--no-progress"] if argv[0] != "theory" else list(argv))
        err = capsys.readouterr().err
        assert rc == 2, err
        assert err.startswith(f"signalprop {argv[0]}: error: "), err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return err

    return _run


@pytest.mark.parametrize("command", ["spp", "confusion", "report", "train"])
def test_a_factory_that_raises(run, command):
    argv = [a if a not in ("cli_err_nets:mlp", "torch.nn:Linear") else "cli_err_nets:boom"
            for a in COMMANDS[command]]
    err = run(command, *argv)
    assert "model cli_err_nets:boom: the factory raised RuntimeError: factory exploded" in err


@pytest.mark.parametrize("command", ["spp", "train"])
def test_a_module_that_does_not_import(run, command):
    err = run(command, "no_such_module_xyz:f", *(IRIS if command == "train" else []))
    assert "cannot import 'no_such_module_xyz'" in err and "ModuleNotFoundError" in err


@pytest.mark.parametrize("command", ["spp", "confusion", "report", "train"])
def test_bad_model_arg_syntax(run, command):
    err = run(command, *COMMANDS[command], "--model-arg", "depth")
    assert "--model-arg expects KEY=VALUE, got 'depth'" in err


@pytest.mark.parametrize("command", ["spp", "confusion", "report", "train", "reproduce"])
def test_an_out_folder_that_cannot_be_created(run, command):
    argv = COMMANDS.get(command, ["nf-spp", "--smoke"])
    err = run(command, *argv, "--out", "a_file/out")
    assert "--out: cannot create the folder a_file/out (a file is in the way)" in err


def test_a_sweep_out_folder_that_cannot_be_created(run, tmp_path):
    (tmp_path / "s.yaml").write_text("base: {model: 'torch.nn:Linear', dataset: iris, steps: 1}\n")
    err = run("sweep", "s.yaml", "--out", "a_file")
    assert "--out: cannot create the folder a_file (a file is in the way)" in err


@pytest.mark.parametrize("command", ["spp", "confusion", "report"])
def test_a_forward_that_does_not_take_the_input(run, command):
    argv = [a if a != "8" else "5" for a in COMMANDS[command]]
    err = run(command, *argv)
    assert "forward failed in module '0' (Linear), which received input of shape (" in err
    assert ", 5): mat1 and mat2 shapes cannot be multiplied" in err


@pytest.mark.parametrize("model,message", [
    ("resnetv2_50", "model resnetv2_50 does not take iris examples of shape (4,): forward "
     "failed in module 'stem.conv' (Conv2d), which received input of shape (2, 4)"),
    ("cli_err_nets:mlp", "forward failed in module '0' (Linear)"),
])
def test_train_a_model_that_does_not_take_the_data(run, model, message):
    assert message in run("train", model, *IRIS)


def test_train_without_a_model(run, tmp_path):
    err = run("train", *IRIS)
    assert "no model to train: give MODEL" in err
    (tmp_path / "run.yaml").write_text("dataset: iris\nsteps: 1\n")
    assert "no model to train" in run("train", "--config", "run.yaml")


def test_missing_config_and_spec_files(run):
    assert "cannot read nothere.yaml" in run("train", "--config", "nothere.yaml")
    assert "cannot read nothere.yaml" in run("sweep", "nothere.yaml")


def test_a_file_the_system_refuses_is_one_line(run, tmp_path):
    (tmp_path / "folder.png").mkdir()  # savefig cannot write a file where a folder is
    err = run("theory", "tanh", "--phase-diagram", "folder.png", "--grid", "3")
    assert "folder.png" in err


@pytest.mark.parametrize("argv,message", [
    (["spp"], "the following arguments are required: MODEL"),
    (["spp", "--model", "resnetv2_50"], "unrecognized arguments: --model"),
    (["spp", "resnetv2_50", "--batch", "3"], "unrecognized arguments: --batch 3"),
    (["confusion", "resnetv2_50", "--batchnorm", "off"], "argument --batchnorm: invalid choice"),
])
def test_usage_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"signalprop {argv[0]}: error: {message}")
    assert err.rstrip().endswith(f"(see 'signalprop {argv[0]} --help')")


LINEAR_YAML = "model: torch.nn:Linear\nmodel_args: {in_features: 4, out_features: 3}\nbatch_size: 16\nsteps: 2\n"


@pytest.mark.parametrize("text,argv,message", [
    (LINEAR_YAML + "dataset: iris\nlr: 0.1\nlr: 0.2\n", [], "run.yaml, line 7: duplicate key 'lr' (first on line 6); keep one of them"),
    (LINEAR_YAML, [], "no dataset to train on: give --dataset (breast_cancer, cifar10, count, "),
    (LINEAR_YAML + "dataset: iris\ndataset_args: {seed: -1}\n", [], "dataset 'iris': option seed must be an integer >= 0, got -1"),
    (LINEAR_YAML + "dataset: iris\nseed: -1\n", [], "seed must be >= 0, got -1"),
    (LINEAR_YAML + "dataset: iris\noptimizer: SGD\n", [], "optimizer='SGD' is not allowed (did you mean 'sgd'?); valid: sgd, nesterov, adam, nag"),
    (LINEAR_YAML + "dataset: iris\nlr: fast\n", [], "lr must be a number, got 'fast'"),
    (LINEAR_YAML + "dataset: iris\nbetas: 0.9\n", [], "betas must be two numbers in [0, 1) (a list), got 0.9"),
    (LINEAR_YAML + "dataset: iris\noptimiser: adam\n", [], "unknown config key 'optimiser' (did you mean optimizer?)"),
    (LINEAR_YAML + "dataset: iris\n", ["--batch-size", "500"], "batch_size=500 is larger than the 120 training examples of 'iris'"),
])
def test_train_config_file_mistakes(run, tmp_path, text, argv, message):
    (tmp_path / "run.yaml").write_text(text)
    assert message in run("train", "--config", "run.yaml", *argv)


def test_train_reads_exponent_numbers_in_yaml_as_the_numbers_meant(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.yaml").write_text(LINEAR_YAML + "dataset: iris\nlr: 1e-2\nweight_decay: 5e-4\n")
    assert main(["train", "--config", "run.yaml", "--no-progress"]) == 0
    saved = json.loads((tmp_path / "out" / "train" / "result.json").read_text())["config"]
    assert (saved["lr"], saved["weight_decay"]) == (0.01, 5e-4)


def test_train_resume_refuses_an_edited_or_foreign_checkpoint(run, tmp_path, capsys):
    import torch

    argv = ["torch.nn:Linear", "--model-arg", "in_features=4", "--model-arg", "out_features=3", *IRIS, "--out", "r"]
    assert main(["train", *argv, "--no-progress"]) == 0
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    torch.save({**state, "step": 99}, tmp_path / "r" / "checkpoint.pt")
    err = run("train", *argv, "--resume")
    assert "checkpoint r/checkpoint.pt: field 'step' is 99, more than the run's 1 steps" in err
    torch.save({k: v for k, v in state.items() if k != "config"}, tmp_path / "r" / "checkpoint.pt")
    assert "checkpoint r/checkpoint.pt has no field 'config'" in run("train", *argv, "--resume")


SWEEP_BASE = "base: {model: 'torch.nn:Linear', model_args: {in_features: 4, out_features: 3}, dataset: iris, steps: 1, batch_size: 16}\n"


@pytest.mark.parametrize("text,message", [
    (SWEEP_BASE + "seeds: -2\n", "seeds must be a count >= 1 (3 means seeds 0, 1, 2) or a non-empty list of distinct integers >= 0, got the count -2"),
    (SWEEP_BASE + "seeds: [0, -1]\n", "got [0, -1] (not allowed: -1)"),
    (SWEEP_BASE + "grd: {lr: [0.1]}\n", "unknown sweep key 'grd' (did you mean grid?); valid keys: name, out, base, grid, seeds"),
    (SWEEP_BASE + "grid: {lr: [0.1]}\ngrid: {lr: [0.2]}\n", "s.yaml, line 3: duplicate key 'grid' (first on line 2); keep one of them"),
    ("base: {dataset: iris, steps: 1}\n", "the sweep names no model: set base.model (or list several under grid.model)"),
    ("base: {model: 'cli_err_nets:boom', dataset: iris, steps: 1, batch_size: 16}\n",
     "run seed=0: model cli_err_nets:boom: the factory raised RuntimeError: factory exploded"),
    ("base: {model: 'cli_err_nets:mlp', dataset: iris, steps: 1, batch_size: 16}\n",
     "run seed=0: model cli_err_nets:mlp does not take iris examples of shape (4,): forward failed in module '0' (Linear)"),
    (SWEEP_BASE + "grid: {optimizer: [sgd, lion]}\n", "invalid run (optimizer='lion', seed=0): optimizer='lion' is not allowed; valid: sgd"),
])
def test_sweep_spec_mistakes(run, tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    assert message in run("sweep", "s.yaml")
    assert not (tmp_path / "s" / "runs").exists()  # nothing ran


def test_a_sweep_into_the_folder_of_another_spec(run, tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(SWEEP_BASE)
    assert main(["sweep", "s.yaml", "--no-progress"]) == 0
    (tmp_path / "s.yaml").write_text(SWEEP_BASE.replace("steps: 1", "steps: 2"))
    err = run("sweep", "s.yaml")
    assert "s holds another sweep (steps 1 there, 2 here): its rows would mix with this one's under the same labels" in err
    assert "choose another output folder (--out, or 'out:' in the spec)" in err
    assert main(["sweep", "s.yaml", "--no-progress", "--out", "s2"]) == 0
