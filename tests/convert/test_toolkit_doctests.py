"""The runnable examples in the toolkit's docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "signalprop.nn.residual", "signalprop.nn.normfree.fixup", "signalprop.nn.group_norm",
    "signalprop.models.fixup_bottleneck", "signalprop.measure.independence._batch_independence",
    "signalprop.measure.forward._fused_add", "signalprop.measure.forward._moments",
    "signalprop.optim.agc", "signalprop.optim.param_groups", "signalprop.optim.unitwise",
    "signalprop.optim._head", "signalprop.convert.normfree", "signalprop.convert.gn_ws",
    "signalprop.convert.fold",
    # the report, built on the toolkit
    "signalprop.report.diagnosis", "signalprop.report._predict", "signalprop.report._probe",
    "signalprop.report.build", "signalprop.report.html",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
