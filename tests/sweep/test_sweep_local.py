"""Local sweeps: results in SQLite, skip and resume, worker processes, killed drivers, bad databases."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from signalprop.sweep import SweepDB, SweepDBError, SweepSpec, run_sweep, sweep_status
from signalprop.train import TrainConfig, fit, read_metrics

SRC = str(Path(__file__).resolve().parents[2] / "src")
BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris", "steps": 12, "batch_size": 16}


def quiet(_msg):
    pass


def rows_by_label(out):
    with SweepDB(out / "sweep.sqlite", create=False) as db:
        return {r["label"]: r for r in db.rows()}


def test_sequential_sweep_records_every_run_and_a_rerun_skips_them(tmp_path):
    spec = SweepSpec.from_dict({"base": BASE, "grid": {"lr": [0.5, 0.05], "optimizer": ["sgd", "adam"]}, "seeds": 2}, default_out=tmp_path / "s")
    summary = run_sweep(spec, progress=False, log=quiet)
    assert (summary.total, summary.ran, summary.skipped) == (8, 8, 0)
    assert summary.counts["completed"] == 8
    rows = rows_by_label(tmp_path / "s")
    assert len(rows) == 8
    # a row holds exactly what a single run of that config produces
    r = rows["lr=0.05 optimizer=adam seed=1"]
    ref = fit(TrainConfig.from_dict({**BASE, "lr": 0.05, "optimizer": "adam", "seed": 1}), progress=False)
    assert r["test_acc"] == ref.metrics["test_acc"] and r["train_loss"] == ref.metrics["train_loss"]
    assert r["step"] == r["total_steps"] == 12 and r["attempts"] == 1 and r["seconds"] > 0
    assert Path(r["history"]).is_file() and len(read_metrics(r["history"])) > 0
    again = run_sweep(spec, progress=False, log=quiet)
    assert (again.ran, again.skipped) == (0, 8)
    assert rows_by_label(tmp_path / "s") == rows  # untouched, attempts still 1
    table = sweep_status(tmp_path / "s")
    assert "lr=0.05 optimizer=adam seed=1  completed" in table
    assert table.splitlines()[-1].startswith("8 runs: 8 completed (no driver running")


def test_failed_and_diverged_runs(tmp_path):
    spec = SweepSpec.from_dict({"base": BASE, "grid": {"lr": [1e38, 0.1], "model_args.out_features": [3, 5]}}, default_out=tmp_path / "s")
    # checked first (the default), the sweep refuses to start, naming the run that cannot
    with pytest.raises(ValueError, match=r"^run lr=1e\+38 model_args.out_features=5 seed=0: model torch.nn:Linear returned logits of shape \(2, 5\); 'iris' needs \(batch, 3\)"):
        run_sweep(spec, progress=False, log=quiet)
    assert rows_by_label(tmp_path / "s") == {}
    summary = run_sweep(spec, progress=False, log=quiet, check=False)  # unchecked, the runs fail one by one
    rows = rows_by_label(tmp_path / "s")
    assert rows["lr=1e+38 model_args.out_features=3 seed=0"]["status"] == "diverged"
    assert rows["lr=0.1 model_args.out_features=3 seed=0"]["status"] == "completed"
    failed = rows["lr=0.1 model_args.out_features=5 seed=0"]
    assert failed["status"] == "failed" and "set model_args.num_classes=3" in failed["error"]
    assert summary.counts == {"pending": 0, "running": 0, "completed": 1, "diverged": 1, "failed": 2}
    again = run_sweep(spec, progress=False, log=quiet, check=False)  # failed runs are retried, finished ones not
    assert again.ran == 2 and rows_by_label(tmp_path / "s")["lr=0.1 model_args.out_features=5 seed=0"]["attempts"] == 2


def test_locked_database_gives_a_clear_message_and_keeps_rows(tmp_path):
    spec = SweepSpec.from_dict({"base": BASE, "grid": {"lr": [0.1, 0.2]}}, default_out=tmp_path / "s")
    run_sweep(spec, progress=False, log=quiet)
    before = rows_by_label(tmp_path / "s")
    other = sqlite3.connect(tmp_path / "s" / "sweep.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds a write transaction
    try:
        with pytest.raises(SweepDBError, match=r"the sweep database .*sweep.sqlite is locked by another process .*committed rows are kept"):
            db = SweepDB(tmp_path / "s" / "sweep.sqlite", timeout=0.1)
            db.mark_started(next(iter(before.values()))["run_id"], "x")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert rows_by_label(tmp_path / "s") == before


def test_corrupt_database_is_left_untouched_and_rows_are_recovered_from_run_files(tmp_path):
    spec = SweepSpec.from_dict({"base": BASE, "grid": {"lr": [0.1, 0.2, 0.3]}}, default_out=tmp_path / "s")
    run_sweep(spec, progress=False, log=quiet)
    before = {k: (r["status"], r["test_acc"]) for k, r in rows_by_label(tmp_path / "s").items()}
    db_path = tmp_path / "s" / "sweep.sqlite"
    garbage = b"this is not an sqlite file " * 200
    db_path.write_bytes(garbage)
    with pytest.raises(SweepDBError, match=r"sweep.sqlite is not a readable SQLite database .*left untouched. Move it aside and rerun"):
        run_sweep(spec, progress=False, log=quiet)
    assert db_path.read_bytes() == garbage
    db_path.rename(tmp_path / "s" / "broken.sqlite")
    summary = run_sweep(spec, progress=False, log=quiet)
    assert (summary.recovered, summary.ran) == (3, 0)
    assert {k: (r["status"], r["test_acc"]) for k, r in rows_by_label(tmp_path / "s").items()} == before


SLOW = textwrap.dedent("""
    import time
    import torch.nn as nn

    class Slow(nn.Linear):
        def forward(self, x):
            time.sleep(0.03)
            return super().forward(x)

    def build():
        return Slow(4, 3)
""")


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone while we looked
                continue
            if ppid == pid:
                kids.append(int(entry))
    return kids


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_killed_driver_with_two_workers_then_rerun_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    (tmp_path / "sweep_slowmod.py").write_text(SLOW)
    (tmp_path / "spec.yaml").write_text(textwrap.dedent("""
        base: {model: "sweep_slowmod:build", dataset: iris, steps: 40, batch_size: 16, checkpoint_every: 4}
        grid: {lr: [0.1, 0.05, 0.02]}
        seeds: 2
    """))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([SRC, str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "signalprop", "sweep", "spec.yaml", "--workers", "2", "--no-progress"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = tmp_path / "spec"
    workers = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if not (out / "sweep.sqlite").exists():
                continue
            try:
                rows = list(rows_by_label(out).values())
            except SweepDBError:
                continue
            done = [r for r in rows if r["status"] == "completed"]
            running = [r for r in rows if r["status"] == "running" and (out / "runs" / r["run_id"] / "checkpoint.pt").exists()]
            if done and running:
                break
        workers = [p for p in children_of(proc.pid) if "spawn" in Path(f"/proc/{p}/cmdline").read_text()]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    before = rows_by_label(out)
    finished_before = {k: r for k, r in before.items() if r["status"] == "completed"}
    interrupted = [k for k, r in before.items() if r["status"] == "running"]
    assert finished_before and interrupted and len(finished_before) < 6, "the kill must land mid-sweep"
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in workers), "worker processes must die with the driver"
    assert "interrupted" in sweep_status(out)

    monkeypatch.syspath_prepend(str(tmp_path))
    summary = run_sweep(SweepSpec.from_file(tmp_path / "spec.yaml"), progress=False, log=quiet)
    after = rows_by_label(out)
    with sqlite3.connect(out / "sweep.sqlite") as con:
        assert con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchone() == (6, 6)
    assert summary.skipped == len(finished_before) and summary.counts["completed"] == 6
    for k, r in finished_before.items():
        assert after[k] == r  # not rerun
    for k in interrupted:
        r = after[k]
        assert r["status"] == "completed" and r["attempts"] >= 1
        steps = [m["step"] for m in read_metrics(r["history"]) if m["split"] == "train"]
        assert steps == sorted(set(steps)) and steps[-1] == 40  # nothing repeated or lost
    # a resumed run ends exactly where an uninterrupted one does
    k = interrupted[0]
    cfg = TrainConfig.from_dict({"model": "sweep_slowmod:build", "dataset": "iris", "steps": 40, "batch_size": 16,
                                 "lr": float(k.split()[0][3:]), "seed": int(k.split()[1][5:])})
    ref = fit(cfg, progress=False)
    assert after[k]["test_loss"] == ref.metrics["test_loss"] and after[k]["train_loss"] == ref.metrics["train_loss"]


def test_one_driver_per_sweep(tmp_path):
    from signalprop.sweep.runner import sweep_lock

    spec = SweepSpec.from_dict({"base": BASE}, default_out=tmp_path / "s")
    with sweep_lock(tmp_path / "s"):
        with pytest.raises(SweepDBError, match=rf"another sweep driver \(.*:{os.getpid()}\) is running the sweep in"):
            run_sweep(spec, progress=False, log=quiet)
    with pytest.raises(SweepDBError, match="no sweep database at .*: the sweep has not run yet"):
        sweep_status(tmp_path / "nothing")
