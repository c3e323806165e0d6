"""One model is one run, however many folders hold it: compare and study refuse to count it twice."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import TINY, TINY_CFG, run_cli


@pytest.fixture(scope="module")
def dev_and_test(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    run_cli("analyze", tiny_run, "--split", "dev", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", root / "dev", check=True)
    run_cli("analyze", tiny_run, "--split", "test", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", root / "test", check=True)
    return root


def _refused(res, *folders) -> None:
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert "analyses of one model" in res.stderr
    for f in folders:
        assert str(f) in res.stderr


def test_compare_refuses_one_analysis_given_twice(dev_and_test, tmp_path):
    res = run_cli("compare", dev_and_test / "dev", dev_and_test / "dev", "--out", tmp_path / "c")
    _refused(res, dev_and_test / "dev")


def test_compare_refuses_one_models_analyses_of_two_splits(dev_and_test, tmp_path):
    res = run_cli("compare", dev_and_test / "dev", dev_and_test / "test", "--out", tmp_path / "c")
    _refused(res, dev_and_test / "dev", dev_and_test / "test")


def test_compare_refuses_a_copied_run_folder(tiny_run, dev_and_test, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns("analysis", ".nerve.lock"))
    run_cli("analyze", copy, "--max-k", "2", "--random-draws", "1", "--no-figures", "--out", copy / "analysis",
            check=True)
    res = run_cli("compare", dev_and_test / "dev", copy, "--out", tmp_path / "c")
    _refused(res, dev_and_test / "dev", copy / "analysis")


def test_compare_of_two_models_is_accepted(dev_and_test, tmp_path):
    other = tmp_path / "seed2"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", other, "--set", "train.seed=2", "--no-progress", check=True)
    run_cli("analyze", other, "--split", "dev", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", other / "analysis", check=True)
    res = run_cli("compare", dev_and_test / "dev", other, "--out", tmp_path / "c")
    assert res.returncode == 0, res.stderr


def test_study_refuses_grid_values_of_the_seed(tmp_path):
    res = run_cli("study", TINY_CFG, "--data", TINY, "--out", tmp_path / "s", "--seeds", "1",
                  "--grid", "train.seed=1,2")
    assert res.returncode == 2 and "train.seed cannot be a grid key" in res.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, says", [
    (("--methods", "sensitivity", "--ablate", "zero,zero"), "--ablate zero,zero: zero is given twice"),
    (("--ablate", "mean"), "--ablate mean: only the --methods sweeps take it"),
    (("--rank-split", "dev"), "--rank-split dev: only the --methods rank on it"),
])
def test_analyze_refuses_options_it_would_ignore_or_repeat(tiny_run, tmp_path, args, says):
    res = run_cli("analyze", tiny_run, *args, "--out", tmp_path / "a")
    assert res.returncode == 2 and says in res.stderr and not (tmp_path / "a").exists()
