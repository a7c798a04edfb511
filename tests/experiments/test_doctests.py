"""Run the Examples sections of the experiments package's modules."""

import doctest
import importlib

import pytest

MODULES = ["signalprop.experiments", "signalprop.experiments._stats",
           "signalprop.experiments._claim", "signalprop.experiments._registry",
           "signalprop.experiments._rows", "signalprop.experiments._models",
           "signalprop.experiments.summary", "signalprop.experiments.claims.nf_spp",
           "signalprop.experiments.claims.criticality_depth",
           "signalprop.experiments.claims.snn_depth",
           "signalprop.experiments.claims.confusion_width_depth",
           "signalprop.experiments.claims.adam_nag"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
