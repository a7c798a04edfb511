"""`signalprop train --device` / `--amp` and sweeps on a device: a GPU this machine lacks
is one line, before the output folder exists."""

import pytest
import torch

from signalprop.cli import main

LINEAR = ["torch.nn:Linear", "--model-arg", "in_features=4", "--model-arg", "out_features=3",
          "--dataset", "iris", "--batch-size", "16", "--steps", "2", "--no-progress"]


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def one_line_error(capsys, command):
    err = capsys.readouterr().err
    assert err.startswith(f"signalprop {command}: error: ") and err.count("\n") == 1
    return err


def test_train_on_cuda_without_a_gpu(tmp_path, capsys, no_gpu):
    assert main(["train", *LINEAR, "--device", "cuda", "--out", str(tmp_path / "run")]) == 2
    assert "device='cuda' needs a CUDA GPU" in one_line_error(capsys, "train")
    assert not (tmp_path / "run").exists()
    assert main(["train", *LINEAR, "--device", "gpu", "--out", str(tmp_path / "run")]) == 2
    assert "device='gpu' is not allowed; valid: cpu, cuda, cuda:N" in one_line_error(capsys, "train")


def test_train_on_auto_and_amp(tmp_path, capsys, no_gpu):
    out = tmp_path / "run"
    assert main(["train", *LINEAR, "--device", "auto", "--amp", "bfloat16", "--out", str(out)]) == 0
    assert "completed 2 steps" in capsys.readouterr().out
    assert '"device": "cpu"' in (out / "result.json").read_text()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--device" in capsys.readouterr().out


def test_sweep_on_cuda_without_a_gpu(tmp_path, capsys, no_gpu):
    (tmp_path / "s.yaml").write_text("base: {model: 'torch.nn:Linear', model_args: {in_features: 4, "
                                     "out_features: 3}, dataset: iris, steps: 2, batch_size: 16, "
                                     "device: cuda}\n")
    assert main(["sweep", str(tmp_path / "s.yaml"), "--no-progress"]) == 2
    assert "run seed=0: device='cuda' needs a CUDA GPU" in one_line_error(capsys, "sweep")
    assert not (tmp_path / "s").exists()
