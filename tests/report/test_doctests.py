"""The runnable examples in the report's docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["signalprop.report.diagnosis", "signalprop.report._predict",
           "signalprop.report._probe", "signalprop.report.build", "signalprop.report.html"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
