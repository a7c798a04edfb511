"""Data-parallel training: 2 processes under torchrun (gloo) equal one process on the global batch."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from signalprop.train import TrainConfig, fit

SRC = str(Path(__file__).resolve().parents[2] / "src")

# A normalizer-free ResNet: no BatchNorm, so each example's gradient does not depend on
# the rest of its batch and the 2 x 8 sharded update equals the update on all 16.
CONFIG = {
    "model": "signalprop.models:resnetv2",
    "model_args": {"name_or_depths": [1, 1], "norm": "nf", "stem": "cifar", "width": 0.125, "num_classes": 4},
    "dataset": "gaussian",
    "dataset_args": {"input_shape": [3, 8, 8], "num_classes": 4, "num_train": 64, "num_test": 32},
    "optimizer": "nesterov", "lr": 0.05, "batch_size": 16, "steps": 6, "seed": 3, "log_every": 2,
}


@pytest.mark.slow
def test_two_processes_equal_single_process_training(tmp_path):
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(CONFIG))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "signalprop", "train", "--ddp", "--config", str(cfg_file), "--no-progress", "--out", str(tmp_path / "ddp")]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # never leave the two workers behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "completed 6 steps" in log
    ddp_state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert ddp_state["step"] == 6 and len(ddp_state["rng"]) == 2

    single = fit(TrainConfig.from_dict(CONFIG), tmp_path / "single", progress=False)
    ref = single.model.state_dict()
    assert ddp_state["model"].keys() == ref.keys()
    for k, v in ref.items():
        # same maths, different summation order (two half-batch means averaged by all-reduce)
        torch.testing.assert_close(ddp_state["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    init = fit(TrainConfig.from_dict({**CONFIG, "lr": 1e-30, "steps": 1}), progress=False).model.state_dict()
    assert any((init[k] - v).abs().max() > 1e-3 for k, v in ref.items()), "training must move the weights"
    single_json = json.loads((tmp_path / "single" / "result.json").read_text())
    ddp_json = json.loads((tmp_path / "ddp" / "result.json").read_text())
    for k in ("train_loss", "test_loss", "test_acc"):
        assert ddp_json["metrics"][k] == pytest.approx(single_json["metrics"][k], rel=1e-5)
