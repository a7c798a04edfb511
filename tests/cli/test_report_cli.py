"""``signalprop report``: writes the page and prints the diagnoses; clear errors."""


from signalprop.cli import main
from signalprop.report import ReportResult

SMALL = ["signalprop.models:resnetv2", "--model-arg", "name_or_depths=[2, 2]",
         "--model-arg", "stem='cifar'", "--model-arg", "width=0.25",
         "--input-shape", "3,16,16", "--no-progress"]


def test_report_cli_with_fix(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", *SMALL, "--model-arg", "norm='none'", "--fix", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mean shift from block" in text and "fix: model, conversion = " in text
    assert "after the fix (sp.convert.to_normfree(model)): none" in text
    assert f"wrote {out / 'report.html'}" in text
    saved = ReportResult.load(out / "report.json")
    assert {d.kind for d in saved.before.diagnoses} >= {"mean_shift", "variance_growth"}
    assert saved.after.diagnoses == [] and saved.before.spp.records[0].name == "stem"
    assert {p.name for p in out.glob("*.png")} == {"spp.png", "grad_spp.png", "confusion.png",
                                                  "conv_spectra.png", "fix_spp.png",
                                                  "fix_grad_spp.png"}


def test_report_cli_errors(tmp_path, capsys):
    assert main(["report", *SMALL, "--batch-size", "1", "--out", str(tmp_path)]) == 2
    assert "--batch-size must be >= 2" in capsys.readouterr().err
    assert main(["report", "torch.nn:Linear", "--model-arg", "in_features=4",
                 "--model-arg", "out_features=2", "--out", str(tmp_path)]) == 2
    assert "--input-shape is required" in capsys.readouterr().err
    assert main(["report", "resnetv2_50", "--model-arg", "nope=1", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_report_help_has_examples(capsys):
    try:
        main(["report", "--help"])
    except SystemExit:
        pass
    assert "signalprop report resnetv2_50" in capsys.readouterr().out
