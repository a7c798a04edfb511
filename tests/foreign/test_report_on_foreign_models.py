"""The report on models nobody here wrote: the channel axis it infers, the blocks and skips
it shows, diagnoses that say what the forward showed, and no fix line that does not apply
(every line shown is run on a copy and must change the model)."""

from __future__ import annotations

import copy

import pytest

import signalprop as sp
from signalprop.report import ReportResult

from .zoo import CASES

pytest.importorskip("transformers")

IDS = [c.name for c in CASES]


def run_fix_line(line, model, x):
    """Run a diagnosis' fix line on a copy: it must work and change the model."""
    namespace = {"sp": sp, "model": copy.deepcopy(model), "x": x}
    before = {k: v.clone() for k, v in namespace["model"].state_dict().items()}
    exec(line, namespace)
    fixed = namespace["model"]
    if "conversion" in namespace:
        assert namespace["conversion"].changes, line
    else:
        after = fixed.state_dict()
        assert any(not after[k].equal(v) for k, v in before.items()), line


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_report_reads_the_model_it_was_given(case, tmp_path):
    model, x = case.model(), case.x()
    r = sp.report.build_report(model, x, tmp_path, label=case.name)
    s = r.before.summary
    assert s["channel_dim"] == case.channel_dim and s["channel_dim_reason"] != "given"
    assert r.before.spp.names == case.blocks
    assert r.before.spp.skips == ({n: case.skip for n in case.blocks} if case.skip else {})
    text = " ".join(d.message for d in r.diagnoses)
    if case.skip is None:  # what the forward showed: no skip connection anywhere
        assert "residual branch" not in text.lower()
    else:
        assert "no skip connection" not in text
    for d in r.diagnoses:
        if d.fix_code:
            run_fix_line(d.fix_code, model, x)
        else:
            assert "no automatic fix applies" in d.message.lower()
    page = r.path.read_text()
    assert "skip connections (measured on the forward)" in page
    again = ReportResult.load(tmp_path / "report.json")
    assert [d.kind for d in again.diagnoses] == [d.kind for d in r.diagnoses]
