"""The argument parser: global options on either side of the subcommand, help text with a default for every
option, and --device on every command that runs a model."""

from __future__ import annotations

import argparse

import pytest

from nerve.cli_args import build_parser
from tests.helpers import cli


def _parsers(parser: argparse.ArgumentParser, name: str = "nerve"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


OPTIONS = [(name, action) for name, p in _parsers(build_parser()) for action in p._actions
           if action.option_strings and not isinstance(action, argparse._HelpAction)]


@pytest.mark.parametrize("name,action", OPTIONS, ids=[f"{n} {a.option_strings[-1]}" for n, a in OPTIONS])
def test_every_option_has_help_that_states_its_default(name, action):
    assert action.help and ("default" in action.help or "required" in action.help)


PARSERS = list(_parsers(build_parser()))


@pytest.mark.parametrize("name,parser", PARSERS, ids=[n for n, _ in PARSERS])
def test_every_positional_argument_has_help(name, parser):
    positional = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    assert all(a.help for a in positional)


@pytest.mark.parametrize("command", ["train", "study", "evaluate", "decode", "analyze", "compare",
                                     "export-activations"])
def test_device_is_an_option_of_every_command_that_runs_a_model(command):
    sub = dict(_parsers(build_parser()))[f"nerve {command}"]
    assert any("--device" in a.option_strings for a in sub._actions)


def test_device_before_the_subcommand_is_kept():
    assert build_parser().parse_args(["--device", "cpu", "evaluate", "R"]).device == "cpu"


def test_device_after_the_subcommand_wins():
    assert build_parser().parse_args(["--device", "cuda", "evaluate", "R", "--device", "cpu"]).device == "cpu"


def test_device_defaults_to_auto_for_every_command():
    assert build_parser().parse_args(["evaluate", "R"]).device == "auto"
    assert build_parser().parse_args(["study"]).device == "auto"


def test_threads_after_the_subcommand_is_read():
    assert build_parser().parse_args(["evaluate", "R", "--threads", "2"]).threads == 2


def test_global_device_before_evaluate_scores_a_run(tiny_run):
    res = cli("--device", "cpu", "evaluate", tiny_run, "--split", "dev", "--json")
    assert res.returncode == 0, res.stderr
    assert '"f1"' in res.stdout


def test_default_thread_count_is_one(tiny_run):
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cli("evaluate", tiny_run, "--split", "dev").returncode == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_study_runs_ten_seeds_by_default():
    assert build_parser().parse_args(["study"]).seeds == 10
