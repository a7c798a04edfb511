"""Registry errors, run_claim's files and verdict line, ClaimResult JSON, the summary."""

import importlib
import json
import math
from pathlib import Path

import pytest

from signalprop.experiments import (
    Claim,
    ClaimResult,
    RunContext,
    find_results,
    get_claim,
    list_claims,
    register,
    run_claim,
    summary_markdown,
    write_summary,
)
from tests.experiments.conftest import make_fake_claim


def test_unknown_claim_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown claim 'nf-sp'.*did you mean nf-spp.*valid"):
        get_claim("nf-sp")


def test_duplicate_and_bad_claims_are_rejected(fake_claim: Claim) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(fake_claim)
    with pytest.raises(ValueError, match="kebab-case"):
        make_fake_claim("Bad_Name")
    with pytest.raises(ValueError, match="criterion must not be empty"):
        make_fake_claim(criterion=" ")
    with pytest.raises(ValueError, match="quick_minutes"):
        make_fake_claim(quick_minutes=0)
    with pytest.raises(ValueError, match="decide must be callable"):
        make_fake_claim(decide=None)
    with pytest.raises(ValueError, match="sizes must have one entry per mode"):
        make_fake_claim(sizes={"quick": {}})
    with pytest.raises(ValueError, match="mode='huge'"):
        RunContext("huge", Path("."))
    with pytest.raises(ValueError, match="mode='huge'"):
        run_claim(fake_claim.name, "huge", "unused")


def test_list_follows_the_one_list_of_claim_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    from signalprop.experiments import _registry, claims

    monkeypatch.setattr(_registry, "_REGISTRY", {})
    monkeypatch.setattr(_registry, "_loaded", False)
    register(make_fake_claim())  # one's own claim, registered before any look-up ...
    names = [c.name for c in list_claims()]
    assert names[-1] == "fake-claim"  # ... still comes after the built-in ones
    modules = [importlib.import_module(f"{claims.__name__}.{path}") for path in claims.CLAIMS]
    assert names[:-1] == [m.CLAIM.name for m in modules]
    assert len(set(names)) == len(names) == len(claims.CLAIMS) + 1


@pytest.mark.parametrize("path, message", [
    ("normfree.no_such_claim", "claim module signalprop.experiments.claims.normfree."
                               "no_such_claim is listed in .*CLAIMS but does not exist"),
    ("no_such_topic.claim", "claims.no_such_topic.claim is listed .* does not exist"),
    ("normfree", "claim module signalprop.experiments.claims.normfree defines no CLAIM"),
])
def test_a_listed_module_that_is_missing_fails_loudly(path: str, message: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from signalprop.experiments import _registry, claims

    monkeypatch.setattr(claims, "CLAIMS", (*claims.CLAIMS, path))
    monkeypatch.setattr(_registry, "_REGISTRY", {})
    monkeypatch.setattr(_registry, "_loaded", False)
    for look_up in (list_claims, lambda: get_claim("nf-spp")):  # every time, not only once
        with pytest.raises(ImportError, match=message):
            look_up()


def test_decide_must_return_a_verdict(fake_claim: Claim, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from signalprop.experiments import _registry

    monkeypatch.setitem(_registry._REGISTRY, "fake-claim",
                        make_fake_claim(decide=lambda m: m["size"] > 1))
    with pytest.raises(RuntimeError, match="decide returned bool, not a Verdict"):
        run_claim("fake-claim", "smoke", tmp_path, log=lambda m: None)


def test_run_claim_writes_result_figure_and_verdict(fake_claim: Claim, tmp_path: Path) -> None:
    lines: list[str] = []
    res = run_claim("fake-claim", "smoke", tmp_path, progress=False, log=lines.append)
    folder = tmp_path / "fake-claim"
    assert (folder / "figure.png").stat().st_size > 0
    data = json.loads((folder / "result.json").read_text())  # strict JSON: NaN as a string
    assert data["measurements"]["nan"] == "NaN" and data["reproduced"] is False
    assert data["measurements"]["decision"] == {"margin": 0}
    assert lines[-1] == ("fake-claim: NOT REPRODUCED -- size 1 [criterion: size > 1]")
    back = ClaimResult.load(folder / "result.json")
    assert math.isnan(back.measurements["nan"]) and back.seconds == res.seconds >= 0
    assert run_claim("fake-claim", "quick", tmp_path, log=lines.append).reproduced
    assert lines[-1].startswith("fake-claim: REPRODUCED -- size 2")


def test_run_claim_checks_what_the_claim_returns(fake_claim: Claim, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from signalprop.experiments import _registry

    monkeypatch.setitem(_registry._REGISTRY, "fake-claim",
                        make_fake_claim(figure=lambda m, path: None))
    with pytest.raises(RuntimeError, match="did not write its figure"):
        run_claim("fake-claim", "smoke", tmp_path, log=lambda m: None)


def test_summary_table_from_result_files(fake_claim: Claim, tmp_path: Path) -> None:
    run_claim("fake-claim", "quick", tmp_path, log=lambda m: None)
    sweep_result = tmp_path / "fake-claim" / "sweeps" / "s" / "runs" / "r" / "result.json"
    sweep_result.parent.mkdir(parents=True)
    sweep_result.write_text(json.dumps({"status": "completed"}))  # a training run: ignored
    found = find_results(tmp_path)
    assert [(r.claim, r.mode) for r in found] == [("fake-claim", "quick")]
    path = write_summary(tmp_path)
    text = path.read_text()
    assert path == tmp_path / "SUMMARY.md"
    row = next(line for line in text.splitlines() if line.startswith("| fake-claim"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["fake-claim", "Nobody (2099)", "**REPRODUCED**", "size 2",
                     "size > 1", "quick", f"{found[0].seconds / 60:.1f}"]
    assert "| nf-spp |" in text and "not run" in text  # registered but without a result
    assert "a \\| b" in summary_markdown([ClaimResult("x", "smoke", True, "a | b", "c")])
    with pytest.raises(ValueError, match="no results folder"):
        find_results(tmp_path / "missing")


def test_result_json_rejects_unknown_keys(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"claim": "x", "mode": "smoke", "reproduced": True, "effect": "",
                             "criterion": "", "colour": "red"}))
    with pytest.raises(ValueError, match="unknown field"):
        ClaimResult.load(p)


def test_summary_keeps_the_history_of_superseded_designs(monkeypatch, tmp_path: Path) -> None:
    from signalprop.experiments import Superseded, _registry

    old = Superseded("v1 (2099-01-01)", "NOT REPRODUCED", "size 0 | tiny", "size > 1",
                     "the task was saturated")
    claim = make_fake_claim(history=(old,))
    _registry._load_claims()
    monkeypatch.setitem(_registry._REGISTRY, claim.name, claim)
    text = summary_markdown([])
    lines = text.splitlines()
    start = lines.index("## History")
    assert all(not line.startswith("## ") for line in lines[:start])  # after the table
    row = next(line for line in lines[start:] if line.startswith("| fake-claim"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == ["fake-claim", "v1 (2099-01-01)", "**NOT REPRODUCED**"]
    assert cells[-1] == "the task was saturated" and "size 0 \\| tiny" in row
    # the built-in claims with a redesigned criterion keep theirs
    assert "| skipinit-depth |" in "\n".join(lines[start:])
    run_claim("fake-claim", "smoke", tmp_path, log=lambda m: None)
    assert "## History" in write_summary(tmp_path).read_text()
    with pytest.raises(ValueError, match="verdict must be"):
        Superseded("v1", "FAILED", "e", "c", "w")
    with pytest.raises(ValueError, match="history must hold"):
        make_fake_claim(history=("v1",))
