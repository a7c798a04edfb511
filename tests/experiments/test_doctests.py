"""Run the Examples sections of the experiments package's modules."""

import doctest
import importlib

import pytest

MODULES = ["signalprop.experiments", "signalprop.experiments._stats",
           "signalprop.experiments._claim", "signalprop.experiments._registry",
           "signalprop.experiments._rows", "signalprop.experiments._models",
           "signalprop.experiments._resnet_runs", "signalprop.experiments.summary",
           "signalprop.experiments.claims"]
MODULES += [f"signalprop.experiments.claims.{path}"
            for path in importlib.import_module("signalprop.experiments.claims").CLAIMS]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
