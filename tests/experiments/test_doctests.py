"""Run the Examples sections of the experiments package's modules."""

import doctest
import importlib

import pytest

MODULES = ["signalprop.experiments", "signalprop.experiments._stats",
           "signalprop.experiments._claim", "signalprop.experiments._registry",
           "signalprop.experiments.summary", "signalprop.experiments.claims.nf_spp"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
