"""One model is one run, however many folders hold it: compare and study refuse to count it twice (the refusals are
cases of tests/reliability_cases.py: compare-one-analysis-thrice, compare-two-splits, compare-copied-run,
study-grid-seed, analyze-ablate-*); two models are accepted."""

from __future__ import annotations

import pytest

from tests.conftest import TINY, TINY_CFG, run_cli


@pytest.fixture(scope="module")
def two_models(tiny_run, tmp_path_factory):
    """Analyses (no figures) of two models: the tiny run (its analysis in another folder) and a second seed."""
    tmp = tmp_path_factory.mktemp("two")
    run_cli("analyze", tiny_run, "--split", "dev", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", tmp / "dev", check=True)
    other = tmp / "seed2"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", other, "--set", "train.seed=2", "--no-progress", check=True)
    run_cli("analyze", other, "--split", "dev", "--max-k", "2", "--random-draws", "1", "--no-figures",
            "--out", other / "analysis", check=True)
    return tmp / "dev", other


def test_compare_of_two_models_is_accepted(two_models, tmp_path):
    res = run_cli("compare", *two_models, "--out", tmp_path / "c", "--no-figures")
    assert res.returncode == 0, res.stderr


def test_compare_with_no_run_figures_draws_the_means_matrices_alone(two_models, tmp_path):
    res = run_cli("compare", *two_models, "--out", tmp_path / "c", "--no-run-figures")
    assert res.returncode == 0, res.stderr
    drawn = sorted(p.stem for p in (tmp_path / "c").glob("*.png"))
    assert drawn == ["corr_mean", "overlap_mean", "similarity_mean"]
    assert (tmp_path / "c" / "corr_seed2.csv").is_file()


def test_a_comparison_written_again_into_its_folder_removes_the_files_only_the_earlier_one_wrote(two_models, tmp_path):
    out = tmp_path / "c"
    run_cli("compare", *two_models, "--out", out, "--no-run-figures", check=True)
    assert (out / "corr_mean.png").is_file()
    (out / "notes.txt").write_text("mine\n")  # a file no comparison wrote stays
    run_cli("compare", *two_models, "--out", out, "--no-figures", check=True)
    assert not [p.name for p in out.iterdir() if p.suffix in (".png", ".svg", ".pdf")]
    assert (out / "corr_mean.csv").is_file() and (out / "notes.txt").is_file()
