"""The API convention every measurement follows (docs/api-conventions.md):

``f(model, x, y=None, *, loss_fn=None, <options>) -> <Name>Result``, with options that
mean the same thing named and defaulted alike everywhere.
"""

import inspect
import typing

import pytest

import signalprop as sp
from signalprop import measure
from signalprop.results import Result

SHARED_DEFAULTS = {"loss_fn": None, "blocks": None, "channel_dim": 1, "batchnorm": "auto",
                   "dropout": "auto", "progress": False, "seed": 0, "label": None}


def _public_callables():
    return {name: getattr(measure, name) for name in measure.__all__
            if inspect.isfunction(getattr(measure, name))}


def test_every_function_of_model_and_input_is_a_listed_measurement():
    takes_model_x = {name for name, f in _public_callables().items()
                     if list(inspect.signature(f).parameters)[:2] == ["model", "x"]}
    assert takes_model_x == set(measure.MEASUREMENTS)


@pytest.mark.parametrize("name", measure.MEASUREMENTS)
def test_signature_is_model_x_then_y_then_keyword_only(name):
    params = list(inspect.signature(getattr(measure, name)).parameters.values())
    assert [p.name for p in params[:2]] == ["model", "x"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params[:2])
    rest = params[2:]
    if rest and rest[0].kind is not inspect.Parameter.KEYWORD_ONLY:
        assert rest[0].name == "y" and rest[0].default is None, name
        assert "loss_fn" in [p.name for p in rest], f"{name} takes y but no loss_fn"
        rest = rest[1:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), name


@pytest.mark.parametrize("name", measure.MEASUREMENTS)
def test_returns_a_result_class(name):
    f = getattr(measure, name)
    ret = typing.get_type_hints(f)["return"]
    assert ret.__name__.endswith("Result") and issubclass(ret, Result)
    assert getattr(sp, name) is f  # flat public name


@pytest.mark.parametrize("option", sorted(SHARED_DEFAULTS))
def test_shared_options_have_one_default(option):
    having = {name: inspect.signature(getattr(measure, name)).parameters[option].default
              for name in measure.MEASUREMENTS
              if option in inspect.signature(getattr(measure, name)).parameters}
    assert having, f"no measurement has {option}"
    assert set(having.values()) == {SHARED_DEFAULTS[option]}, having


def test_every_measurement_has_a_label_and_a_docstring_example():
    for name in measure.MEASUREMENTS:
        f = getattr(measure, name)
        assert "label" in inspect.signature(f).parameters, name
        assert ">>>" in (f.__doc__ or ""), name
