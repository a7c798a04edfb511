"""Training on a real GPU (skipped where CUDA is not available): a cuda run matches the CPU
run from the same initial weights, its checkpoints hold CPU tensors and resume on either
device (on its own device exactly, GPU RNG included), mixed precision trains, sweep
workers share the GPUs, and data-parallel training runs on nccl."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from signalprop.sweep import SweepSpec, run_sweep
from signalprop.train import TrainConfig, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SRC = str(Path(__file__).resolve().parents[2] / "src")
# the interruptible model of conftest.py: 4 -> hidden -> 3 on iris
RUN = dict(model="devinterrupt:build", model_args={"hidden": 32}, dataset="iris", batch_size=16,
           optimizer="sgd", lr=0.05, steps=16, seed=1, log_every=4)


def tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (dict, list, tuple)):
        for v in obj.values() if isinstance(obj, dict) else obj:
            yield from tensors(v)


def test_a_cuda_run_matches_the_cpu_run(tmp_path, interrupt):
    cpu = fit(TrainConfig(**RUN), progress=False)
    gpu = fit(TrainConfig(**RUN, device="cuda"), tmp_path / "gpu", progress=False)
    assert gpu.device == "cuda:0" and {p.device.type for p in gpu.model.parameters()} == {"cuda"}
    # the same initial weights and batches, float32 on both; only summation orders differ
    for a, b in zip(cpu.model.parameters(), gpu.model.parameters()):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-4)
    assert gpu.metrics["test_acc"] == pytest.approx(cpu.metrics["test_acc"], abs=0.05)
    state = torch.load(tmp_path / "gpu" / "checkpoint.pt", weights_only=True)  # no map_location
    assert state["device"] == "cuda:0" and len(state["cuda_rng"]) == 1
    assert {t.device.type for t in tensors(state)} == {"cpu"}
    assert json.loads((tmp_path / "gpu" / "result.json").read_text())["device"] == "cuda:0"


@pytest.mark.parametrize("first,second", [("cuda", "cuda"), ("cuda", "cpu"), ("cpu", "cuda")])
def test_resume_on_either_device(tmp_path, interrupt, first, second):
    """Dropout draws from the GPU's RNG on cuda: resuming on the same GPU restores it and
    ends with the uninterrupted weights; on another device the run continues and ends."""
    cfg = TrainConfig(**{**RUN, "model_args": {"hidden": 32, "dropout": 0.3}})
    state = interrupt(cfg.replace(device=first), tmp_path / "a", call=9)
    assert state["step"] == 8
    resumed = fit(cfg.replace(device=second), tmp_path / "a", resume=True, progress=False)
    assert resumed.resumed_from == 8 and resumed.status == "completed"
    assert resumed.device == ("cuda:0" if second == "cuda" else "cpu")
    if first == second:
        whole = fit(cfg.replace(device=second), tmp_path / "b", progress=False)
        for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("amp", ["bfloat16", "float16"])
def test_mixed_precision_trains_on_the_gpu(interrupt, amp):
    full = fit(TrainConfig(**RUN, device="cuda"), progress=False)
    half = fit(TrainConfig(**RUN, device="cuda", amp=amp), progress=False)
    assert half.status == "completed"
    assert half.metrics["train_loss"] == pytest.approx(full.metrics["train_loss"], rel=0.1)


def test_sweep_workers_share_the_gpus(tmp_path):
    base = {**RUN, "model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3},
            "device": "cuda", "steps": 4}
    spec = SweepSpec.from_dict({"base": base, "grid": {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}},
                               default_out=tmp_path)
    summary = run_sweep(spec, workers=2, progress=False, log=lambda line: None)
    assert summary.counts["completed"] == 4
    used = {json.loads(p.read_text())["device"] for p in tmp_path.glob("runs/*/result.json")}
    # worker k runs on GPU k mod count (which worker takes which run is up to the pool)
    assert used and used <= {f"cuda:{k % torch.cuda.device_count()}" for k in range(2)}


@pytest.mark.slow
def test_data_parallel_on_gpus_uses_nccl(tmp_path):
    n = min(2, torch.cuda.device_count())
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps({**RUN, "model": "torch.nn:Linear", "device": "cuda",
                                    "model_args": {"in_features": 4, "out_features": 3}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
            "-m", "signalprop", "train", "--ddp", "--config", str(cfg_file), "--no-progress",
            "--out", str(tmp_path / "ddp")]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # never leave the workers behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out.decode(errors="replace")
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 16 and len(state["cuda_rng"]) == n and state["device"] == "cuda:0"
