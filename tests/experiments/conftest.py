"""Fixtures for the reproduction tests: a throw-away claim registered only in a test."""

from __future__ import annotations

import pytest

from signalprop.experiments import Claim, ClaimResult, RunContext, _registry


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
