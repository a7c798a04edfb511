"""The examples in the theory docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "signalprop.theory.activations", "signalprop.theory.criticality",
    "signalprop.theory.expectations", "signalprop.theory.finite_width",
    "signalprop.theory.fixed_points", "signalprop.theory.gamma", "signalprop.theory.gaussian",
    "signalprop.theory.maps", "signalprop.theory.phase", "signalprop.theory.residual",
    "signalprop.theory.selu", "signalprop.theory._hermite", "signalprop.theory",
    "signalprop.plot.phase",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0 or name == "signalprop.theory._checks"
