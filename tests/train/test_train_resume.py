"""Resume after SIGKILL: the final weights and metric history equal an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from signalprop.train import TrainConfig, fit, read_metrics

SRC = str(Path(__file__).resolve().parents[2] / "src")

# Dropout makes the result depend on the global RNG stream, which the checkpoint must
# restore; the sleep makes the run slow enough to be killed half-way.
SLOW_MODEL = textwrap.dedent("""
    import time
    import torch.nn as nn

    class Slow(nn.Module):
        def __init__(self, delay):
            super().__init__()
            self.delay = delay
            self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(0.3), nn.Linear(16, 3))

        def forward(self, x):
            if self.training:
                time.sleep(self.delay)
            return self.net(x)

    def build(delay=0.0):
        return Slow(delay)
""")


def child_env(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", SIGNALPROP_TEST_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([SRC, str(tmp_path), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_resume_after_kill_gives_the_uninterrupted_weights(tmp_path, monkeypatch):
    (tmp_path / "resume_slowmod.py").write_text(SLOW_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    steps, every = 60, 4
    argv = [sys.executable, "-m", "signalprop", "train", "resume_slowmod:build", "--model-arg", "delay=0.04",
            "--dataset", "iris", "--optimizer", "adam", "--lr", "0.01", "--schedule", "cosine", "--batch-size", "16",
            "--steps", str(steps), "--checkpoint-every", str(every), "--log-every", "3", "--seed", "7",
            "--no-progress", "--out", str(tmp_path / "killed")]
    proc = subprocess.Popen(argv, env=child_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # a few more steps: the kill lands between checkpoints
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 0 < killed_at < steps, "the run must be killed half-way for this test to mean anything"
    assert not (tmp_path / "killed" / "result.json").exists()

    cfg = TrainConfig(model="resume_slowmod:build", model_args={"delay": 0.0}, dataset="iris", optimizer="adam", lr=0.01,
                      schedule="cosine", batch_size=16, steps=steps, checkpoint_every=every, log_every=3, seed=7)
    # the delay is a model argument, so the resumed run must use the killed run's value
    with pytest.raises(ValueError, match=r"cannot resume from .*: the config differs in model_args \(saved \{'delay': 0.04\}, now \{'delay': 0.0\}\)"):
        fit(cfg, tmp_path / "killed", resume=True, progress=False)
    cfg = cfg.replace(**{"model_args.delay": 0.04})
    resumed = fit(cfg, tmp_path / "killed", resume=True, progress=False)
    assert resumed.resumed_from == killed_at and resumed.step == steps
    whole = fit(cfg, tmp_path / "whole", progress=False)
    for (k, a), b in zip(resumed.model.state_dict().items(), whole.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    # the metric history has neither gaps nor repeated lines (wall times aside)
    strip = lambda recs: [{k: v for k, v in r.items() if k != "seconds"} for r in recs]  # noqa: E731
    assert strip(read_metrics(tmp_path / "killed" / "metrics.jsonl")) == strip(read_metrics(tmp_path / "whole" / "metrics.jsonl"))
    assert json.loads((tmp_path / "killed" / "result.json").read_text())["metrics"] == json.loads((tmp_path / "whole" / "result.json").read_text())["metrics"]
