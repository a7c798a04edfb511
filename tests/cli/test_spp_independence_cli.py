"""`signalprop spp --check-independence`: verdict lines and the result in spp.json."""

import json

from signalprop.cli import main


def test_check_independence_prints_verdicts_and_stores_them(tmp_path, capsys):
    rc = main(["spp", "resnetv2_50", "--norm", "bn,gn_ws,nf", "--input-shape", "3,16,16",
               "--batch-size", "3", "--out", str(tmp_path), "--no-progress",
               "--model-arg", "width=0.125", "--model-arg", "stem='cifar'",
               "--check-independence"])
    assert rc == 0
    out = capsys.readouterr().out
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("batch ")]
    assert len(lines) == 3
    assert lines[0].startswith("batch NOT independent (leak train ")
    assert "first in 'stages.0.0.norm1'" in lines[0]
    assert lines[1].startswith("batch independent (leak train 0, eval 0")
    assert lines[2].startswith("batch independent (leak train 0, eval 0")
    data = json.loads((tmp_path / "spp.json").read_text())
    verdicts = [d["meta"]["batch_independence"]["independent"] for d in data]
    assert verdicts == [False, True, True]
    assert data[0]["meta"]["batch_independence"]["leak"]["eval"] == 0.0


def test_without_the_flag_nothing_is_checked(tmp_path, capsys):
    rc = main(["spp", "resnetv2_50", "--norm", "bn", "--input-shape", "3,16,16",
               "--batch-size", "2", "--out", str(tmp_path), "--no-progress",
               "--model-arg", "width=0.125"])
    assert rc == 0
    assert "batch " not in capsys.readouterr().out
    assert "batch_independence" not in json.loads((tmp_path / "spp.json").read_text())[0]["meta"]
