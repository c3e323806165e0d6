"""One model is one run, however many folders hold it: compare and study refuse to count it twice (the refusals are
cases of tests/reliability_cases.py: compare-one-analysis-thrice, compare-two-splits, compare-copied-run,
study-grid-seed, analyze-ablate-*); two models are accepted."""

from __future__ import annotations

from tests.conftest import TINY, TINY_CFG, run_cli


def test_compare_of_two_models_is_accepted(tiny_run, tmp_path):
    run_cli("analyze", tiny_run, "--split", "dev", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", tmp_path / "dev", check=True)
    other = tmp_path / "seed2"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", other, "--set", "train.seed=2", "--no-progress", check=True)
    run_cli("analyze", other, "--split", "dev", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", other / "analysis", check=True)
    res = run_cli("compare", tmp_path / "dev", other, "--out", tmp_path / "c", "--no-figures")
    assert res.returncode == 0, res.stderr
