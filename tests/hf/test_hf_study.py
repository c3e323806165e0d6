"""`nerve study MODEL_FOLDER`: seeds of a Hugging Face model fine-tuned, analysed, compared and taken layer by layer
in one command, and a re-run that keeps what is finished."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("transformers")

from tests.conftest import TINY, run_cli
from tests.hf.conftest import RECIPE


def _spec(folder, out):
    from nerve.hf.depth import DepthSpec
    from nerve.hf_study import HFStudySpec
    from nerve.study import study_analysis

    analysis = study_analysis(["sensitivity", "random"], ["zero"], 3, draws=(0, 0)).replace(figures=())
    depth = DepthSpec(k=3, rank_sentences=30, score_sentences=20, random_draws=3)
    return HFStudySpec(str(folder), str(TINY), str(out), 2, tuple(RECIPE), analysis, depth)


@pytest.fixture(scope="module")
def study(tuned, tmp_path_factory):
    from nerve.hf_study import hf_study

    out = tmp_path_factory.mktemp("hfstudy") / "s"
    hf_study(_spec(tuned.parent / "bert", out), log=lambda msg: None)
    return tuned.parent / "bert", out


def test_a_study_of_a_model_folder_trains_analyses_compares_and_goes_layer_by_layer(study):
    _, out = study
    for seed in (42, 43):
        assert (out / "runs" / f"seed{seed}" / "complete.json").is_file()
        assert (out / "runs" / f"seed{seed}" / "analysis" / "complete.json").is_file()
    assert (out / "compare" / "findings.json").is_file()
    rows = list(csv.DictReader((out / "depth" / "depth_findings.csv").open()))
    assert rows and {r["n_runs"] for r in rows} == {"2"}
    assert (out / "depth" / "report.html").is_file()


def test_a_study_re_run_keeps_finished_runs_and_analyses(study):
    from nerve.hf_study import hf_study

    folder, out = study
    marks = {p: p.read_bytes() for p in (out / "runs").glob("seed*/**/complete.json")}
    checkpoints = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("seed*/checkpoint.pt")}
    said = []
    hf_study(_spec(folder, out), log=said.append)
    assert sum("finished run kept" in m for m in said) == 2 and sum("analysis kept" in m for m in said) == 2
    assert {p: p.read_bytes() for p in marks} == marks
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints


def test_a_grid_over_a_model_folder_is_a_one_line_error(tuned, tmp_path):
    proc = run_cli("study", tuned.parent / "bert", "--data", TINY, "--grid", "train.lr=1e-3,1e-4", "--out",
                   tmp_path / "s")
    assert proc.returncode == 2 and "--grid" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
