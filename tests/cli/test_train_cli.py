"""`signalprop train`: flags and config files, outputs, divergence, one-line errors."""

import json

import pytest

from signalprop.cli import main
from signalprop.train import TrainConfig, fit

LINEAR = ["torch.nn:Linear", "--model-arg", "in_features=4", "--model-arg", "out_features=3",
          "--dataset", "iris", "--batch-size", "16", "--no-progress"]


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "torchrun --standalone --nproc-per-node 2 -m signalprop train --ddp" in out
    assert "--agc-clipping" in out and "--resume" in out


def test_config_file_with_flag_overrides_equals_the_library_call(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("model: torch.nn:Linear\nmodel_args: {in_features: 4, out_features: 3}\n"
                                       "dataset: iris\nbatch_size: 16\nepochs: 3\nlr: 0.5\noptimizer: nag\n")
    rc = main(["train", "--config", str(tmp_path / "run.yaml"), "--lr", "0.05", "--steps", "9",
               "--schedule", "step", "--milestones", "0.5", "--out", str(tmp_path / "a"), "--no-progress"])
    assert rc == 0
    assert "completed 9 steps" in capsys.readouterr().out
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    cfg = TrainConfig(model="torch.nn:Linear", model_args={"in_features": 4, "out_features": 3}, dataset="iris",
                      batch_size=16, steps=9, lr=0.05, optimizer="nag", schedule="step", milestones=(0.5,))
    assert saved["config"] == cfg.to_dict()
    assert saved["metrics"] == fit(cfg, progress=False).metrics


def test_divergence_is_reported_not_raised(tmp_path, capsys):
    rc = main(["train", *LINEAR, "--lr", "1e38", "--momentum", "0", "--steps", "20", "--out", str(tmp_path)])
    assert rc == 0
    assert "diverged at step" in capsys.readouterr().out
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("argv,message", [
    (["--optimizer", "adamw"], "optimizer='adamw' is not allowed (did you mean 'adam'?); valid: sgd, nesterov, adam, nag"),
    (["--model-arg", "oops"], "--model-arg expects KEY=VALUE, got 'oops'"),
    (["--data-arg", "root=/nowhere", "--dataset", "cifar10"], "CIFAR-10 not found in /nowhere"),
    (["--ddp"], "--ddp needs the environment torchrun sets up"),
    (["--dataset", "mnist2d"], "unknown dataset 'mnist2d'"),
])
def test_errors_are_one_line(argv, message, tmp_path, capsys):
    rc = main(["train", *LINEAR, "--steps", "2", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("signalprop train: error: ") and message in err and err.count("\n") == 1


def test_existing_run_needs_resume(tmp_path, capsys):
    assert main(["train", *LINEAR, "--steps", "2", "--out", str(tmp_path)]) == 0
    assert main(["train", *LINEAR, "--steps", "2", "--out", str(tmp_path)]) == 2
    assert "already holds a run; pass resume=True (--resume)" in capsys.readouterr().err
    assert main(["train", *LINEAR, "--steps", "4", "--out", str(tmp_path), "--resume"]) == 2
    assert "the config differs in steps (saved 2, now 4)" in capsys.readouterr().err


def test_model_argument_overrides_the_config_files_model(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("model: no_such_module:f\ndataset: iris\nbatch_size: 16\n")
    rc = main(["train", *LINEAR[:5], "--config", str(tmp_path / "run.yaml"), "--steps", "2",
               "--out", str(tmp_path / "a"), "--no-progress"])
    assert rc == 0 and "completed 2 steps" in capsys.readouterr().out
    assert json.loads((tmp_path / "a" / "result.json").read_text())["config"]["model"] == "torch.nn:Linear"
