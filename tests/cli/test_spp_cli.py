"""The `signalprop spp` command: files written, summaries, one-line errors."""

import json
import subprocess
import sys
import textwrap

import pytest

from signalprop.cli import main


def test_spp_command_writes_files_and_summary(tmp_path, capsys):
    rc = main(["spp", "resnetv2_50", "--norm", "bn,nf", "--input-shape", "3,32,32",
               "--batch-size", "4", "--out", str(tmp_path), "--no-progress",
               "--model-arg", "width=0.25"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "resnetv2_50 bn: 17 blocks" in out and "resnetv2_50 nf: 17 blocks" in out
    assert "non-finite values: none" in out
    for name in ("spp.png", "spp.csv", "spp.json"):
        assert (tmp_path / name).stat().st_size > 0
    data = json.loads((tmp_path / "spp.json").read_text())
    assert [d["label"] for d in data] == ["resnetv2_50 bn", "resnetv2_50 nf"]
    assert len((tmp_path / "spp.csv").read_text().splitlines()) == 1 + 2 * 17


def test_user_factory_with_its_own_arguments(tmp_path, monkeypatch, capsys):
    (tmp_path / "mynets.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        def mlp(depth=3):
            layers = []
            for _ in range(depth):
                layers += [nn.Linear(16, 16), nn.Tanh()]
            return nn.Sequential(*layers)
    """))
    monkeypatch.chdir(tmp_path)
    rc = main(["spp", "mynets:mlp", "--model-arg", "depth=4", "--input-shape", "16",
               "--out", "out", "--no-progress"])
    assert rc == 0
    assert "mynets:mlp: 8 blocks (children of Sequential '<model>')" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["resnetv2_5"], "unknown model 'resnetv2_5'"),
        (["resnetv2_50", "--norm", "batch"], "unknown norm 'batch'; valid: bn, none, nf"),
        (["nosuchpkg.mod:f"], "cannot import 'nosuchpkg.mod'"),
        (["resnetv2_50", "--input-shape", "4,32,32"],
         "forward failed in module 'stem.conv' (Conv2d), which received input of shape (2, 4, 32, 32)"),
        (["torch.nn:Identity"], "--input-shape is required"),
    ],
)
def test_errors_are_one_line(argv, message, tmp_path, capsys):
    rc = main(["spp", *argv, "--batch-size", "2", "--out", str(tmp_path), "--no-progress",
               "--model-arg", "width=0.125"] if "resnetv2" in argv[0] else
              ["spp", *argv, "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err, err
    assert len(err.strip().splitlines()) == 1


def test_console_script_help_lists_examples():
    out = subprocess.run([sys.executable, "-m", "signalprop", "spp", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "examples:" in out and "--norm bn,none,nf" in out
    top = subprocess.run([sys.executable, "-m", "signalprop", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "spp" in top and "models" in top


def test_predict_overlays_theory_and_saves_predictions(tmp_path, capsys):
    rc = main(["spp", "resnetv2_50", "--norm", "nf", "--input-shape", "3,64,64",
               "--batch-size", "4", "--out", str(tmp_path), "--no-progress", "--predict",
               "--model-arg", "width=0.25"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "theory: average variance within" in out
    data = json.loads((tmp_path / "spp.json").read_text())
    assert [d["kind"] for d in data] == ["measured", "predicted"]
    assert data[1]["label"] == "resnetv2_50 nf (predicted)"
    assert len(data[1]["records"]) == len(data[0]["records"]) == 17


def test_predict_on_a_model_without_theory_says_so(tmp_path, capsys):
    rc = main(["spp", "torch.nn:Linear", "--model-arg", "in_features=4",
               "--model-arg", "out_features=4", "--input-shape", "4", "--predict",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    assert "no theory prediction for Linear" in capsys.readouterr().out


def test_predict_with_backward_on_a_critical_mlp(tmp_path, capsys):
    rc = main(["spp", "signalprop.models:mlp", "--model-arg", "depth=6",
               "--model-arg", "width=64", "--model-arg", "activation='tanh'",
               "--input-shape", "64", "--batch-size", "32", "--backward", "--predict",
               "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    assert "theory: average variance within" in capsys.readouterr().out
    grads = json.loads((tmp_path / "grad_spp.json").read_text())
    assert [g["kind"] for g in grads] == ["measured", "predicted"]
    assert len(grads[1]["records"]) == 6
