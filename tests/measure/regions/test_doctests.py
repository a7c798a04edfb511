"""The examples in the region modules' docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "signalprop.measure.regions._linear_regions", "signalprop.measure.regions._plane_regions",
    "signalprop.measure.regions._pieces", "signalprop.measure.regions._polygons",
    "signalprop.measure.regions._support", "signalprop.results.regions",
    "signalprop.theory.regions", "signalprop.models.region_nets", "signalprop.plot.regions",
    "signalprop.experiments.claims.regions.ternary_regions",
    "signalprop.experiments.claims.regions.region_density",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
