"""Fixtures for the reproduction tests: a throw-away claim registered only in a test, and
the end-to-end check every claim's smoke run must pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from signalprop.experiments import Claim, ClaimResult, RunContext, _registry, run_claim


def _fake_run(ctx: RunContext) -> ClaimResult:
    from signalprop.plot._style import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.errorbar([0, 1], [1.0, 2.0], yerr=[0.1, 0.2])
    save(fig, ctx.out / "figure.png")
    size = ctx.pick(1, 2, 3)
    return ClaimResult("fake-claim", ctx.mode, size > 1, f"size {size}", FAKE_CRITERION,
                       {"size": size, "nan": float("nan")})


FAKE_CRITERION = "size > 1"


@pytest.fixture
def fake_claim(monkeypatch: pytest.MonkeyPatch) -> Claim:
    _registry._load_claims()  # the real claims first, so the fake one is removed cleanly
    claim = Claim("fake-claim", "Nobody (2099)", "Sizes exceed one.", FAKE_CRITERION,
                  _fake_run, 0.1)
    monkeypatch.setitem(_registry._REGISTRY, claim.name, claim)
    return claim


def _run_smoke(name: str, tmp_path: Path) -> ClaimResult:
    """Run ``name`` at smoke size and check the pipeline end to end, not the verdict: a
    non-empty figure, a result.json that reads back as this run, and one verdict line
    '<name>: REPRODUCED|NOT REPRODUCED -- <effect> [criterion: <criterion>]'."""
    lines: list[str] = []
    res = run_claim(name, "smoke", tmp_path, progress=False, log=lines.append)
    folder = tmp_path / name
    assert (folder / "figure.png").stat().st_size > 0
    back = ClaimResult.load(folder / "result.json")
    assert (back.claim, back.mode, back.reproduced) == (name, "smoke", res.reproduced)
    verdict = "REPRODUCED" if res.reproduced else "NOT REPRODUCED"
    assert lines[-1].startswith(f"{name}: {verdict} -- ")
    assert lines[-1].endswith(f"[criterion: {_registry.get_claim(name).criterion}]")
    return res


@pytest.fixture
def smoke_run() -> Callable[[str, Path], ClaimResult]:
    """``smoke_run(name, tmp_path)``: the claim's smoke result, after the end-to-end checks."""
    return _run_smoke
