"""``signalprop reproduce``: --list, one claim, --all, --summary, errors."""

from pathlib import Path

import pytest

from signalprop.cli import main
from signalprop.experiments import Claim
from tests.experiments.conftest import make_fake_claim


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert "signalprop reproduce --list" in out and "--summary" in out


def test_list_shows_claims_with_criteria(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert "nf-spp  [Brock, De & Smith (ICLR 2021); quick ~" in out
    assert "criterion:" in out and "claim:" in out


def test_run_one_claim_then_summary(fake_claim: Claim, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "fake-claim", "--smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0  # NOT REPRODUCED is still success
    out = capsys.readouterr().out
    assert "fake-claim: NOT REPRODUCED -- size 1 [criterion: size > 1]" in out
    assert (tmp_path / "fake-claim" / "result.json").is_file()
    assert main(["reproduce", "--summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| fake-claim | Nobody (2099) | **NOT REPRODUCED** | size 1 |" in out
    assert (tmp_path / "SUMMARY.md").is_file()


@pytest.mark.parametrize("argv, message", [
    (["reproduce"], "name a claim"),
    (["reproduce", "nope"], "unknown claim 'nope'"),
    (["reproduce", "nf-spp", "--all"], "not both"),
    (["reproduce", "nf-spp", "--workers", "0"], "--workers must be >= 1"),
    (["reproduce", "nf-spp", "--workers", "2", "--ray", "auto"], "exclude each other"),
    (["reproduce", "--summary", "/nonexistent/dir"], "no results folder"),
])
def test_errors_are_one_line(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_all_reports_errors_but_runs_the_rest(fake_claim: Claim, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import signalprop.experiments as experiments
    from signalprop.experiments import _registry

    broken = make_fake_claim("broken-claim", measure=lambda ctx, size: 1 / 0)
    monkeypatch.setattr(experiments, "list_claims", lambda: [broken, fake_claim])
    monkeypatch.setitem(_registry._REGISTRY, "broken-claim", broken)
    assert main(["reproduce", "--all", "--smoke", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "broken-claim: ERROR -- ZeroDivisionError" in captured.out
    assert "fake-claim: NOT REPRODUCED" in captured.out
    assert "1 claim(s) could not run: broken-claim" in captured.err
    assert "nf-spp" not in captured.out  # only the two claims listed ran
