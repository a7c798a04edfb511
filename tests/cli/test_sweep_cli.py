"""`signalprop sweep`: run, rerun, --status, --workers 2, errors."""

import pytest

from signalprop.cli import main

SPEC = """\
base:
  model: torch.nn:Linear
  model_args: {in_features: 4, out_features: 3}
  dataset: iris
  steps: 6
  batch_size: 16
grid:
  lr: [0.1, 0.01]
seeds: 2
"""


def test_run_rerun_and_status(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(SPEC)
    assert main(["sweep", str(tmp_path / "s.yaml"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ran 4 runs (0 skipped as finished, 0 recovered); database now: 4 completed" in out
    assert (tmp_path / "s" / "sweep.sqlite").is_file()
    assert main(["sweep", str(tmp_path / "s.yaml"), "--no-progress"]) == 0
    assert "ran 0 runs (4 skipped as finished" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "s.yaml"), "--status"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["run", "status", "step", "test_acc", "test_loss", "seconds"]
    assert table[1].split()[:4] == ["lr=0.1", "seed=0", "completed", "6/6"]
    assert table[-1].startswith("4 runs: 4 completed")


@pytest.mark.slow
def test_two_worker_processes(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(SPEC)
    assert main(["sweep", str(tmp_path / "s.yaml"), "--workers", "2", "--no-progress", "--out", str(tmp_path / "w")]) == 0
    assert "database now: 4 completed" in capsys.readouterr().out


@pytest.mark.parametrize("spec,argv,message", [
    ("base: {model: 'torch.nn:Linear', dataset: iris, steps: 1}\ngrid: {lr: 0.1}\n", [], "grid key 'lr' must map to a non-empty list of values, got 0.1"),
    ("base: {model: 'torch.nn:Linear', dataset: iris, stepz: 1}\n", [], "unknown config key 'stepz' (did you mean steps?)"),
    ("base: {model: 'torch.nn:Linear', dataset: iris, steps: 1}\n", ["--status"], "no sweep database at"),
    ("base: {model: 'torch.nn:Linear', dataset: iris, steps: 1}\n", ["--workers", "0"], "--workers must be >= 1, got 0"),
    ("base: {model: 'torch.nn:Linear', dataset: iris, steps: 1}\n", ["--workers", "2", "--ray", "auto"], "--ray and --workers exclude each other"),
])
def test_errors_are_one_line(spec, argv, message, tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(spec)
    assert main(["sweep", str(tmp_path / "s.yaml"), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signalprop sweep: error: ") and message in err and err.count("\n") == 1
