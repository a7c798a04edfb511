"""One CLI convention: positional MODEL, --progress/--no-progress, examples in every --help,
shared options declared once."""

import argparse

import pytest

import signalprop.cli as cli
from signalprop.cli import build_parser

MODEL_COMMANDS = {"spp", "confusion", "report", "train"}
PROGRESS_COMMANDS = {"spp", "confusion", "report", "train", "sweep", "reproduce"}


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", cli._COMMANDS)
def test_help_shows_an_example_of_the_command_itself(command):
    text = _subparsers()[command].format_help()
    examples = text.split("examples:")[1].splitlines()
    assert any(line.strip().startswith(f"signalprop {command}") for line in examples)
    assert "--model " not in text  # the model is positional, never --model


@pytest.mark.parametrize("command", sorted(MODEL_COMMANDS))
def test_model_is_positional(command):
    p = _subparsers()[command]
    model = [a for a in p._actions if a.dest == "model"]
    assert len(model) == 1 and not model[0].option_strings and model[0].metavar == "MODEL"
    assert model[0].nargs == ("?" if command == "train" else None)
    assert "module:function" in model[0].help


def test_progress_switches_both_ways_wherever_there_is_a_bar():
    for name, p in _subparsers().items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert ({"--progress", "--no-progress"} <= flags) == (name in PROGRESS_COMMANDS), name
        if name in PROGRESS_COMMANDS:
            action = next(a for a in p._actions if a.dest == "progress")
            assert isinstance(action, argparse.BooleanOptionalAction) and action.default is True


def test_shared_options_are_declared_once():
    # declared by one helper in cli/_common.py, so they read the same in each command
    sub = _subparsers()
    shared = ("--model-arg", "--input-shape", "--seed", "--mode", "--norm", "--activation")
    for flag in shared:
        helps = {_help(sub[c], flag) for c in ("spp", "confusion") if _help(sub[c], flag)}
        assert len(helps) == 1, flag


def _help(p, flag):
    return next((a.help for a in p._actions if flag in a.option_strings), None)


def test_top_level_help_explains_model(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "signalprop spp resnetv2_600 --norm bn,none,nf" in out and "module:function" in out
