"""Shared by the device tests: a model that raises KeyboardInterrupt (Ctrl-C) on a chosen
training forward, so a run stops half-way with a checkpoint, on any device."""

import pytest
import torch

from signalprop.train import fit

INTERRUPTING = """
import torch.nn as nn

STOP_AT = {"call": None}  # the test arms this: raise KeyboardInterrupt on that training forward


class Interruptible(nn.Module):
    calls = 0

    def __init__(self, gain, hidden, dropout):
        super().__init__()
        self.gain = gain
        self.net = (nn.Linear(4, 3) if not hidden else
                    nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 3)))

    def forward(self, x):
        if self.training:
            Interruptible.calls += 1
            if Interruptible.calls == STOP_AT["call"]:
                raise KeyboardInterrupt
        return self.net(self.gain * x)


def build(gain=1.0, hidden=0, dropout=0.0):
    return Interruptible(gain, hidden, dropout)
"""

@pytest.fixture
def interrupt(tmp_path, monkeypatch):
    """``interrupt(cfg, out, call)``: run ``cfg`` (model ``devinterrupt:build``) until its
    ``call``-th training forward raises KeyboardInterrupt, as Ctrl-C would: the steps
    before are checkpointed. Returns that checkpoint's state."""
    (tmp_path / "devinterrupt.py").write_text(INTERRUPTING)
    monkeypatch.syspath_prepend(str(tmp_path))
    import devinterrupt

    def run(cfg, out, call):
        devinterrupt.STOP_AT["call"], devinterrupt.Interruptible.calls = call, 0
        try:
            with pytest.raises(KeyboardInterrupt):
                fit(cfg, out, progress=False)
        finally:
            devinterrupt.STOP_AT["call"] = None
        return torch.load(out / "checkpoint.pt", weights_only=True)

    return run
