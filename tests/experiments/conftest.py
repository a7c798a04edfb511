"""Fixtures for the reproduction tests: a throw-away claim registered only in a test, and
the end-to-end check every claim's smoke run must pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from signalprop.experiments import Claim, ClaimResult, RunContext, Verdict, _registry, run_claim
from signalprop.results._base import encode


def _fake_measure(ctx: RunContext, size: dict) -> dict:
    return {"size": size["n"], "nan": float("nan")}


def _fake_decide(m: dict) -> Verdict:
    return Verdict(m["size"] > 1, f"size {m['size']}", {"margin": m["size"] - 1})


def _fake_figure(m: dict, path: Path) -> None:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.errorbar([0, 1], [1.0, float(m["size"])], yerr=[0.1, 0.2])
    save(fig, path)


FAKE_CRITERION = "size > 1"


def make_fake_claim(name: str = "fake-claim", **changes) -> Claim:
    """A claim in the measure / decide / figure shape; ``changes`` replace its parts."""
    parts = dict(name=name, paper="Nobody (2099)", statement="Sizes exceed one.",
                 criterion=FAKE_CRITERION, quick_minutes=0.1,
                 sizes={"smoke": {"n": 1}, "quick": {"n": 2}, "full": {"n": 3}},
                 measure=_fake_measure, decide=_fake_decide, figure=_fake_figure)
    return Claim(**{**parts, **changes})


@pytest.fixture
def fake_claim(monkeypatch: pytest.MonkeyPatch) -> Claim:
    _registry._load_claims()  # the real claims first, so the fake one is removed cleanly
    claim = make_fake_claim()
    monkeypatch.setitem(_registry._REGISTRY, claim.name, claim)
    return claim


def as_json(data: Any) -> str:
    """Canonical strict-JSON text of ``data`` (compares NaN equal to NaN)."""
    return json.dumps(encode(data), sort_keys=True)


def _run_smoke(name: str, tmp_path: Path) -> ClaimResult:
    """Run ``name`` at smoke size and check the pipeline end to end, not the verdict: a
    non-empty figure, a result.json that reads back as this run, one verdict line
    '<name>: REPRODUCED|NOT REPRODUCED -- <effect> [criterion: <criterion>]', and
    ``decide`` applied to the stored measurements gives the stored verdict again."""
    lines: list[str] = []
    res = run_claim(name, "smoke", tmp_path, progress=False, log=lines.append)
    folder = tmp_path / name
    assert (folder / "figure.png").stat().st_size > 0
    back = ClaimResult.load(folder / "result.json")
    assert (back.claim, back.mode, back.reproduced) == (name, "smoke", res.reproduced)
    verdict = "REPRODUCED" if res.reproduced else "NOT REPRODUCED"
    assert lines[-1].startswith(f"{name}: {verdict} -- ")
    claim = _registry.get_claim(name)
    assert lines[-1].endswith(f"[criterion: {claim.criterion}]")
    stored = dict(back.measurements)
    decision = stored.pop("decision")
    again = claim.decide(stored)  # decide is pure: the stored numbers decide again alike
    assert (again.reproduced, again.effect) == (back.reproduced, back.effect)
    assert as_json(again.details) == as_json(decision)
    return res


@pytest.fixture
def smoke_run() -> Callable[[str, Path], ClaimResult]:
    """``smoke_run(name, tmp_path)``: the claim's smoke result, after the end-to-end checks."""
    return _run_smoke


class RecordingContext:
    """A RunContext stand-in whose ``sweep`` trains nothing: it checks that every run's
    config is a valid TrainConfig, records it, and reports it completed with a fixed
    accuracy (to check what a claim's ``measure`` would run, e.g. at ``full`` size)."""

    def __init__(self, mode: str = "full", acc: float = 0.5) -> None:
        self.mode, self.acc, self.configs = mode, acc, []

    def sweep(self, name: str, base: dict, grid: dict, seeds: list[int]) -> list[dict]:
        from signalprop.sweep import SweepSpec

        spec = SweepSpec.from_dict({"name": name, "out": "unused", "base": base,
                                    "grid": grid, "seeds": list(seeds)})
        rows = []
        for run in spec.runs():
            cfg = run.config.to_dict()
            self.configs.append(cfg)
            rows.append({"label": run.label, "config": cfg, "history": f"{name}/metrics.jsonl",
                         "result": {"status": "completed", "step": 1, "total_steps": 1,
                                    "metrics": {"test_acc": self.acc, "train_loss": 0.1},
                                    "seconds": 0.0, "error": None}})
        return rows


def check_full_mode(measure: Callable[[Any, dict], dict], size: dict) -> list[dict]:
    """Run a training claim's ``measure`` at ``size`` on a :class:`RecordingContext`: every
    run is a valid TrainConfig of ResNetV2 on CIFAR-10, tuned on validation and judged on
    test, and its smallest model builds. Returns the recorded configs."""
    from signalprop.models import load_model

    ctx = RecordingContext()
    measure(ctx, dict(size))
    assert {c["dataset"] for c in ctx.configs} == {"cifar10"}
    assert {c["model"] for c in ctx.configs} == {"resnetv2_50"}
    assert {c["dataset_args"]["holdout"] for c in ctx.configs} == {"validation", "test"}
    smallest = min(ctx.configs, key=lambda c: str(c["model_args"].get("name_or_depths")))
    assert load_model(smallest["model"], **smallest["model_args"]) is not None
    return ctx.configs
