"""Learning-rate schedules against the formulas written out independently."""

import math

import pytest

from signalprop.train import TrainConfig, lr_at


def test_constant_and_warmup():
    cfg = TrainConfig(lr=0.4, steps=10)
    assert [lr_at(t, cfg, 10) for t in range(10)] == [0.4] * 10
    w = TrainConfig(lr=0.4, schedule="warmup", warmup_steps=4, steps=10)
    assert [lr_at(t, w, 10) for t in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])


def test_step_schedule_drops_at_milestone_fractions():
    cfg = TrainConfig(lr=1.0, schedule="step", milestones=(0.5, 0.75), gamma=0.1, steps=8)
    assert [lr_at(t, cfg, 8) for t in range(8)] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_with_warmup_reaches_min_lr_on_the_last_step():
    cfg = TrainConfig(lr=2.0, min_lr=0.5, schedule="cosine", warmup_steps=2, steps=12)
    got = [lr_at(t, cfg, 12) for t in range(12)]
    want = [1.0, 2.0] + [0.5 + 0.75 * (1 + math.cos(math.pi * k / 9)) for k in range(10)]
    assert got == pytest.approx(want)
    assert got[-1] == pytest.approx(0.5) and got[2] == pytest.approx(2.0)
    one = TrainConfig(lr=0.3, schedule="cosine", steps=1)
    assert lr_at(0, one, 1) == 0.3


def test_step_out_of_range():
    with pytest.raises(ValueError, match=r"step must be in \[0, 5\), got 5"):
        lr_at(5, TrainConfig(steps=5), 5)
