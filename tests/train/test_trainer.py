"""fit(): trajectories equal a hand-written loop, metrics, divergence, input errors."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from signalprop.data import load_dataset
from signalprop.train import NAG, TrainConfig, epoch_permutation, fit, read_metrics

LINEAR = {"model": "torch.nn:Linear", "model_args": {"in_features": 4, "out_features": 3}, "dataset": "iris", "batch_size": 16}


def hand_loop(cfg, make_opt, lrs):
    """Plain reference loop: same seed, same epoch order, lr per step from ``lrs``."""
    data = load_dataset("iris")
    torch.manual_seed(cfg.seed)
    model = torch.nn.Linear(4, 3)
    opt = make_opt(model.parameters())
    n, b = len(data.train), cfg.batch_size
    losses = []
    for t, lr in enumerate(lrs):
        epoch, pos = divmod(t, n // b)
        x, y = data.train.batch(epoch_permutation(n, cfg.seed, epoch)[pos * b:(pos + 1) * b])
        for g in opt.param_groups:
            g["lr"] = lr
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        if not math.isfinite(loss.item()):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, losses


def test_epoch_permutation_is_a_seeded_permutation():
    p = epoch_permutation(50, seed=3, epoch=2)
    assert sorted(p.tolist()) == list(range(50))
    assert torch.equal(p, epoch_permutation(50, 3, 2))
    assert not torch.equal(p, epoch_permutation(50, 3, 1)) and not torch.equal(p, epoch_permutation(50, 4, 2))


@pytest.mark.parametrize("name,make", [
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=1.0, momentum=0.9, weight_decay=1e-3)),
    ("nesterov", lambda ps: torch.optim.SGD(ps, lr=1.0, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("adam", lambda ps: torch.optim.Adam(ps, lr=1.0, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3)),
    ("nag", lambda ps: NAG(ps, lr=1.0, momentum=0.9, weight_decay=1e-3)),
])
def test_weights_equal_a_hand_written_loop(name, make):
    # 17 steps of 7 per epoch: crosses two epoch boundaries; cosine schedule with warm-up
    cfg = TrainConfig(**LINEAR, optimizer=name, lr=0.05, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-3,
                      schedule="cosine", warmup_steps=3, min_lr=0.01, steps=17, seed=5)
    lrs = [0.05 * (t + 1) / 3 for t in range(3)] + [0.01 + 0.04 * 0.5 * (1 + math.cos(math.pi * k / 13)) for k in range(14)]
    ref, _ = hand_loop(cfg, make, lrs)
    res = fit(cfg, progress=False)
    assert res.status == "completed" and res.step == 17
    for (k, a), b in zip(res.model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_files_metrics_and_final_evaluation(tmp_path):
    cfg = TrainConfig(**LINEAR, lr=0.1, epochs=3, log_every=4)  # 7 steps per epoch, 21 in all
    res = fit(cfg, tmp_path, progress=False)
    recs = read_metrics(tmp_path / "metrics.jsonl")
    train = [r for r in recs if r["split"] == "train"]
    test = [r for r in recs if r["split"] == "test"]
    assert [r["step"] for r in train] == [4, 8, 12, 16, 20, 21]
    assert [r["step"] for r in test] == [7, 14, 21]  # once per epoch, the last at the end
    # the final test metrics are those of the returned model on the whole test split
    x, y = load_dataset("iris").test.tensors()
    with torch.no_grad():
        out = res.model(x)
    assert res.metrics["test_acc"] == pytest.approx((out.argmax(1) == y).double().mean().item(), abs=1e-12)
    assert res.metrics["test_loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)
    assert res.metrics["train_loss"] == train[-1]["loss"]
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "completed" and saved["step"] == 21 and saved["run_key"] == cfg.run_key()
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        fit(cfg, tmp_path, progress=False)
    again = fit(cfg, tmp_path, resume=True, progress=False)  # nothing left to do
    assert again.resumed_from == 21 and again.metrics == res.metrics
    # killed after the final checkpoint but before result.json: resuming restores it
    (tmp_path / "result.json").unlink()
    again = fit(cfg, tmp_path, resume=True, progress=False)
    assert again.metrics == res.metrics
    assert json.loads((tmp_path / "result.json").read_text())["metrics"] == saved["metrics"]


def test_nonfinite_loss_ends_the_run_as_diverged_with_the_step(tmp_path):
    cfg = TrainConfig(**LINEAR, lr=1e38, momentum=0.0, steps=30, checkpoint_every=1)
    _, losses = hand_loop(cfg, lambda ps: torch.optim.SGD(ps, lr=1.0), [1e38] * 30)
    first_bad = next(i + 1 for i, v in enumerate(losses) if not math.isfinite(v))
    assert first_bad > 1  # the first update is what blows up
    res = fit(cfg, tmp_path, progress=False)
    assert res.status == "diverged" and res.step == first_bad
    assert f"at step {first_bad}" in res.message
    last = read_metrics(tmp_path / "metrics.jsonl")[-1]
    assert last["event"] == "diverged" and last["step"] == first_bad and not math.isfinite(last["loss"])
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "diverged" and saved["step"] == first_bad
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == first_bad - 1  # the last good state is kept


def test_input_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"model torch.nn:Linear returned logits of shape \(2, 5\); 'iris' needs \(batch, 3\): set model_args.num_classes=3"):
        fit(TrainConfig(**{**LINEAR, "model_args": {"in_features": 4, "out_features": 5}}, steps=1), progress=False)
    with pytest.raises(ValueError, match="batch_size=500 is larger than the 120 training examples of 'iris'"):
        fit(TrainConfig(**{**LINEAR, "batch_size": 500}, steps=1), progress=False)
    with pytest.raises(ValueError, match="--ddp needs the environment torchrun sets up"):
        fit(TrainConfig(**LINEAR, steps=1), progress=False, ddp=True)


BROKEN = """
import torch.nn as nn

def boom(**kwargs):
    raise RuntimeError("factory exploded\\nsecond line")

def mlp():
    return nn.Sequential(nn.Linear(5, 3))

def pair():
    return nn.Bilinear(4, 4, 3)
"""


@pytest.mark.parametrize("model,msg", [
    ("trainer_broken:boom", r"^model trainer_broken:boom: the factory raised RuntimeError: factory exploded$"),
    ("trainer_broken:mlp", r"^model trainer_broken:mlp does not take iris examples of shape \(4,\): forward failed in module '0' \(Linear\), which received input of shape \(2, 4\): mat1 and mat2"),
    ("trainer_broken:pair", r"^model trainer_broken:pair does not take iris examples of shape \(4,\): forward failed in module '<model>' \(Bilinear\)"),
    ("trainer_broken:nothing", r"^model trainer_broken:nothing: module 'trainer_broken' has no attribute 'nothing'"),
])
def test_a_run_that_cannot_start_fails_in_one_line_before_any_file(tmp_path, monkeypatch, model, msg):
    (tmp_path / "trainer_broken.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=msg):
        fit(TrainConfig(model=model, dataset="iris", batch_size=16, steps=1), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_checkpoint_of_another_process_count(tmp_path):
    cfg = TrainConfig(**LINEAR, lr=0.1, steps=3)
    fit(cfg, tmp_path, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["rng"] = state["rng"] * 2  # as if written by two processes
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"written by 2 processes; resume it with the same number, not 1"):
        fit(cfg, tmp_path, resume=True, progress=False)

INTERRUPTING = """
import torch.nn as nn

STOP_AT = {"call": None}  # the test arms this: raise KeyboardInterrupt on that training forward


class Interruptible(nn.Linear):
    calls = 0

    def forward(self, x):
        if self.training:
            Interruptible.calls += 1
            if Interruptible.calls == STOP_AT["call"]:
                raise KeyboardInterrupt
        return super().forward(x)


def build():
    return Interruptible(4, 3)
"""


def test_ctrl_c_saves_a_checkpoint_and_resume_completes_identically(tmp_path, monkeypatch):
    (tmp_path / "interruptmod.py").write_text(INTERRUPTING)
    monkeypatch.syspath_prepend(str(tmp_path))
    import interruptmod

    cfg = TrainConfig(model="interruptmod:build", dataset="iris", batch_size=16, lr=0.1, steps=12, seed=2)
    interruptmod.STOP_AT["call"] = 8
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "a", progress=False)
    assert torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["step"] == 7  # no checkpoint_every set
    interruptmod.STOP_AT["call"] = None
    resumed = fit(cfg, tmp_path / "a", resume=True, progress=False)
    whole = fit(cfg, tmp_path / "b", progress=False)
    assert resumed.resumed_from == 7
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)
