"""BYOL in the trainer: the loss and the EMA by hand, tau schedule, augmentations, the
linear probe against scikit-learn, resumable BYOL runs, and the logged collapse metrics."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from signalprop.data import ArraySplit, load_dataset
from signalprop.train import TrainConfig, fit, read_metrics
from signalprop.train.augment import Augment
from signalprop.train.byol import BYOL, BYOLObjective, tau_at
from signalprop.train.probe import linear_probe


def test_tau_schedule_by_hand():
    assert [tau_at(k, 4, 0.99) for k in (0, 2, 4)] == pytest.approx([0.99, 0.995, 1.0])


def test_loss_is_the_symmetric_cosine_loss_written_out():
    torch.manual_seed(0)
    byol = BYOL(nn.Linear(6, 5), 5, hidden=7, proj_dim=4, head_norm="none")
    with torch.no_grad():  # a target different from the online network
        for p in byol.target_encoder.parameters():
            p.add_(0.3)
    v1, v2 = torch.randn(3, 6), torch.randn(3, 6)

    def online(v):
        return byol.predictor(byol.projector(byol.encoder(v)))

    def target(v):
        return byol.target_projector(byol.target_encoder(v))

    want = 0.0
    for a, b in ((online(v1), target(v2)), (online(v2), target(v1))):
        cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
        want = want + (2 - 2 * cos)
    torch.testing.assert_close(byol(v1, v2), want.mean())
    byol(v1, v2).backward()
    assert byol.target_encoder.weight.grad is None and byol.encoder.weight.grad is not None


def test_ema_update_by_hand_and_buffers_copied():
    byol = BYOL(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), 4, 8, 2)
    with torch.no_grad():
        byol.encoder[0].weight.fill_(1.0)
        byol.target_encoder[0].weight.fill_(3.0)
        byol.encoder[1].running_mean.fill_(0.5)
    byol.update_target(0.75)
    assert torch.allclose(byol.target_encoder[0].weight, torch.full((4, 3), 2.5))
    assert torch.equal(byol.target_encoder[1].running_mean, torch.full((4,), 0.5))


def test_augmentations_are_seeded_shape_preserving_and_bounded():
    x = torch.randn(8, 40)
    aug = Augment(shift=3, noise=0.0, mask=5, scale=0.0)
    a = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(1)))
    assert a.shape == x.shape
    for row, orig in zip(a, x):  # a shifted copy with at most 3 + 3 + 5 zeroed positions
        assert (row == 0).sum() <= 11
        found = any(torch.equal(row[row != 0], orig[max(0, -s):40 - max(0, s)][
            (row != 0)[max(0, s):40 - max(0, -s)]]) for s in range(-3, 4))
        assert found
    img = Augment(shift=1, noise=0.1, mask=2)(torch.randn(4, 1, 8, 8),
                                              torch.Generator().manual_seed(0))
    assert img.shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="mask must be an integer >= 0"):
        Augment(mask=-1)


def test_probe_accuracy_matches_scikit_learn_logistic_regression():
    sklearn = pytest.importorskip("sklearn.linear_model")
    data = load_dataset("wine")
    enc = nn.Identity()
    _, acc = linear_probe(enc, data.train, data.test, data.num_classes, l2=1e-3)
    xtr, ytr = data.train.tensors()
    xte, yte = data.test.tensors()
    mu, sd = xtr.double().mean(0), xtr.double().std(0)
    ref = sklearn.LogisticRegression(C=1.0 / (2 * 1e-3 * len(xtr)), max_iter=5000)
    ref.fit(((xtr - mu) / sd).numpy(), ytr.numpy())
    want = float(np.mean(ref.predict(((xte - mu) / sd).numpy()) == yte.numpy()))
    assert abs(acc - want) <= 1.5 / len(yte)  # at most one test example differs


BYOL_CFG = {"model": "torch.nn:Linear", "model_args": {"in_features": 13, "out_features": 8},
            "dataset": "wine", "objective": "byol", "batch_size": 32, "lr": 0.05,
            "objective_args": {"hidden": 16, "proj_dim": 8, "shift": 1, "mask": 2}}


def test_fit_byol_logs_probe_and_collapse_and_resumes_to_the_same_weights(tmp_path,
                                                                          monkeypatch):
    cfg = TrainConfig(**BYOL_CFG, steps=8, log_every=4)
    full = fit(cfg, tmp_path / "a", progress=False)
    assert full.status == "completed" and isinstance(full.model, nn.Linear)
    test = [r for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if r["split"] == "test"]
    assert {"acc", "std_ratio", "effective_rank", "cos_views", "dead_dims"} <= set(test[-1])
    assert 0 <= full.metrics["test_acc"] <= 1 and full.metrics["test_std_ratio"] > 0
    # interrupt before step 5 (Ctrl-C): the checkpoint holds the online and target networks
    loss = BYOLObjective.loss

    def interrupted(self, net, x, step, rank=0):
        if step == 5:
            raise KeyboardInterrupt
        return loss(self, net, x, step, rank)

    monkeypatch.setattr(BYOLObjective, "loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "b", progress=False)
    monkeypatch.setattr(BYOLObjective, "loss", loss)
    again = fit(cfg, tmp_path / "b", resume=True, progress=False)
    assert again.resumed_from == 5
    torch.testing.assert_close(again.model.weight, full.model.weight, rtol=0, atol=0)
    assert again.metrics["test_acc"] == full.metrics["test_acc"]


def test_byol_objective_rejects_unknown_options():
    data = load_dataset("iris")
    with pytest.raises(ValueError, match=r"unknown objective_args \['width'\]"):
        BYOLObjective(nn.Linear(4, 4), data, 0, {"width": 3})
    with pytest.raises(ValueError, match="head_norm='batch' is not allowed"):
        BYOLObjective(nn.Linear(4, 4), data, 0, {"head_norm": "batch"})
    split = ArraySplit(torch.randn(4, 4), torch.tensor([0, 1, 0, 1]))
    assert math.isfinite(linear_probe(nn.Identity(), split, split, 2)[0])
