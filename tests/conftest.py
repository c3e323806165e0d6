"""Shared fixtures: the tiny corpus, its config, a trained run, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny"
TINY_CFG = FIXTURES / "tiny.toml"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_cli(*args: str, check: bool = False, cwd: str | None = None, fresh: bool = False):
    """Run ``nerve ARGS``: in this process (``tests.helpers.cli``), or with ``fresh`` in a new Python process
    (where the process boundary is what is tested: imports, environment, signals)."""
    if fresh:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.run([sys.executable, "-m", "nerve.cli", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=cwd, timeout=600)
    else:
        proc = cli(*args, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"nerve {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run trained for 2 epochs on the tiny corpus (softmax, uni LSTM)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", out, "--no-progress", "--device", "cpu", check=True)
    return out


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "conll2003" / "train.txt").is_file():
        pytest.skip("../shared/data is not present")
    return SHARED


# The files that take longest (tens of seconds each, measured with --durations), run first: with
# `-n auto --dist loadfile` a long file scheduled last keeps one worker busy while the other idles.
FIRST = ("test_study.py", "test_method_stage.py", "test_faults.py", "test_report_plots.py", "test_report_browser.py",
         "test_api.py", "test_heldout.py", "test_analyze_run.py", "test_compare.py", "test_package.py",
         "test_hf_study.py", "test_reliability.py", "test_interventions.py", "test_bases_compare.py",
         "test_serve_guard.py")  # session 21's per-file sums of --durations, heaviest first


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: order within a file is kept
