"""Sweeps and devices: a missing GPU is refused before any file, the device is not part of
a sweep's identity (a sweep may move to a GPU machine and keep its finished runs), local
workers share the GPUs round-robin, and Ray tasks ask for a GPU."""

import queue

import pytest
import torch

from signalprop.sweep import SweepSpec, _exec, run_sweep
from signalprop.sweep._ray import ray_gpus

BASE = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3},
        "dataset": "iris", "steps": 2, "batch_size": 16}


def quiet(line):
    pass


def test_a_cuda_sweep_without_a_gpu_is_refused_before_any_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = SweepSpec.from_dict({"base": {**BASE, "device": "cuda"}, "grid": {"lr": [0.1, 0.2]}},
                               default_out=tmp_path / "s")
    with pytest.raises(ValueError, match=r"run lr=0.1 seed=0: device='cuda' needs a CUDA GPU, but .*"
                                         r"available: cpu"):
        run_sweep(spec, progress=False, log=quiet)
    assert not (tmp_path / "s").exists()


def test_the_device_is_set_in_base_not_in_the_grid():
    with pytest.raises(ValueError, match=r"grid key 'device': it says where runs execute, not what they "
                                         r"compute \(runs differing only in it are one run\); set it under 'base'"):
        SweepSpec.from_dict({"base": BASE, "grid": {"device": ["cpu", "auto"]}})


def test_a_sweep_keeps_its_runs_when_it_moves_to_another_device(tmp_path):
    first = SweepSpec.from_dict({"base": BASE, "grid": {"lr": [0.1]}}, default_out=tmp_path)
    assert run_sweep(first, progress=False, log=quiet).ran == 1
    moved = SweepSpec.from_dict({"base": {**BASE, "device": "auto"}, "grid": {"lr": [0.1, 0.2]}},
                                default_out=tmp_path)
    summary = run_sweep(moved, progress=False, log=quiet)  # same identity: extended, not refused
    assert (summary.skipped, summary.ran, summary.counts["completed"]) == (1, 1, 2)


def test_workers_take_the_gpus_round_robin(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [_exec.worker_device("cuda", k) for k in range(5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert _exec.worker_device("auto", 3) == "cuda:1"
    assert _exec.worker_device("cuda:1", 0) == "cuda:1"  # a named GPU is kept
    assert _exec.worker_device("cpu", 1) == "cpu" and _exec.worker_device("cuda", None) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _exec.worker_device("auto", 1) == "auto"  # resolves to the CPU in the worker


def test_each_worker_takes_its_own_number(monkeypatch):
    slots = queue.Queue()
    for k in range(3):
        slots.put(k)
    taken = []
    for _ in range(3):
        _exec._take_slot(slots)
        taken.append(_exec._slot)
    monkeypatch.setattr(_exec, "_slot", None)
    assert taken == [0, 1, 2]


def test_ray_tasks_ask_for_a_gpu_when_their_run_uses_one():
    assert ray_gpus({"device": "cpu"}, 4.0) == (0, {"device": "cpu"})
    assert ray_gpus({"device": "auto"}, 0.0) == (0, {"device": "auto"})  # a CPU cluster
    assert ray_gpus({"device": "auto"}, 2.0) == (1, {"device": "cuda"})
    # Ray shows a task only the GPU it chose, as cuda:0
    assert ray_gpus({"device": "cuda:1", "lr": 0.1}, 2.0) == (1, {"device": "cuda", "lr": 0.1})
