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
