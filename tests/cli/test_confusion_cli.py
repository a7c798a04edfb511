"""`signalprop confusion` and `signalprop spp --backward`: files, summaries, one-line errors."""

import json
import textwrap

import pytest

from signalprop.cli import main

SMALL = ["--model-arg", "width=0.125", "--model-arg", "stem='cifar'", "--model-arg",
         "num_classes=5", "--input-shape", "3,8,8"]


def test_confusion_command_writes_files_and_summary(tmp_path, capsys):
    rc = main(["confusion", "resnetv2_50", "--norm", "none,nf", *SMALL,
               "--batch-size", "6", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "resnetv2_50 none: B=6, eta" in out and "resnetv2_50 nf: B=6, eta" in out
    assert "q0.5" in out
    for name in ("confusion.png", "confusion.csv", "confusion.json"):
        assert (tmp_path / name).stat().st_size > 0
    data = json.loads((tmp_path / "confusion.json").read_text())
    assert [d["n_pairs"] for d in data] == [15, 15]
    assert len((tmp_path / "confusion.csv").read_text().splitlines()) == 3


def test_user_model_with_mse(tmp_path, monkeypatch, capsys):
    (tmp_path / "nets.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        def mlp(depth=2):
            return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(8, 8), nn.Tanh())])
    """))
    monkeypatch.chdir(tmp_path)
    rc = main(["confusion", "nets:mlp", "--model-arg", "depth=3", "--input-shape", "8",
               "--loss", "mse", "--batch-size", "5", "--out", "o", "--no-progress"])
    assert rc == 0 and "nets:mlp: B=5" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--norm", "bn"], "BatchNorm module(s) in train mode"),
        (["--norm", "bn", "--batch-size", "1"], "--batch-size must be >= 2"),
        (["--norm", "nf", "--quantiles", "a"], "--quantiles expects numbers"),
    ],
)
def test_confusion_errors_are_one_line(extra, message, tmp_path, capsys):
    rc = main(["confusion", "resnetv2_50", *SMALL, "--batch-size", "3",
               "--out", str(tmp_path), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    if "BatchNorm" in message:
        assert "--batchnorm eval" in err


def test_batchnorm_eval_runs(tmp_path, capsys):
    rc = main(["confusion", "resnetv2_50", "--norm", "bn", "--batchnorm", "eval",
               *SMALL, "--batch-size", "3", "--out", str(tmp_path), "--no-progress"])
    assert rc == 0 and "resnetv2_50 bn: B=3, eta" in capsys.readouterr().out


def test_spp_backward_writes_gradient_panels(tmp_path, capsys):
    rc = main(["spp", "resnetv2_50", "--norm", "bn,nf", *SMALL, "--batch-size", "4",
               "--out", str(tmp_path), "--no-progress", "--backward"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.count("backward: grad var") == 2
    for name in ("grad_spp.png", "grad_spp.csv", "grad_spp.json", "spp.png"):
        assert (tmp_path / name).stat().st_size > 0
    data = json.loads((tmp_path / "grad_spp.json").read_text())
    assert [d["label"] for d in data] == ["resnetv2_50 bn", "resnetv2_50 nf"]
    assert len(data[0]["records"]) == 17 and data[0]["loss"] == "probe"


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["confusion", "--help"])
    assert "examples:" in capsys.readouterr().out
