"""Neurons or directions over runs (issue 33): a study analyses every run in each basis and compares the bases with
the neurons run by run; the numbers equal a plain re-computation from the runs' basis_summary.csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import stats

from nerve.analysis.bases_compare import read_basis_summary
from nerve.analysis.stats import holm
from tests.conftest import TINY, TINY_CFG, run_cli


@pytest.fixture(scope="module")
def bases_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "s"
    run_cli("study", TINY_CFG, "--data", TINY, "--seeds", "3", "--methods", "sensitivity,probeless,random",
            "--max-k", "3", "--judged-draws", "10", "--matched-draws", "0", "--basis", "neurons,pca,leace",
            "--no-figures", "--workers", "1", "--no-progress", "--out", out, check=True)
    return out


def _csv(path):
    return list(csv.DictReader(open(path, encoding="utf-8")))


def test_a_study_with_bases_analyses_every_run_in_each_basis_and_leace_in_the_neurons_one(bases_study):
    runs = sorted((bases_study / "runs" / "base").iterdir())
    assert len(runs) == 3
    for run in runs:
        assert (run / "analysis" / "leace_summary.csv").is_file()
        assert (run / "analysis" / "bases" / "pca" / "basis.npz").is_file()
        assert (run / "analysis" / "bases" / "pca" / "basis_summary.csv").is_file()


def test_the_bases_means_and_paired_differences_equal_a_plain_recomputation(bases_study):
    runs = sorted((bases_study / "runs" / "base").iterdir())
    per = {b: [{(r["method"], r["ablate"], r["target_tag"]): r for r in read_basis_summary(
        run / "analysis" / sub / "basis_summary.csv")} for run in runs] for b, sub in (("neurons", ""),
                                                                                      ("pca", "bases/pca"))}
    across = {(r["basis"], r["method"], r["ablate"], r["target_tag"], r["metric"]): r
              for r in _csv(bases_study / "compare" / "base" / "bases_across_runs.csv")}
    paired = _csv(bases_study / "compare" / "base" / "bases_paired.csv")
    checked = 0
    for key, row in across.items():
        basis, method, ablate, tag, metric = key
        x = [run[(method, ablate, tag)][metric] for run in per[basis] if (method, ablate, tag) in run]
        x = np.array([v for v in x if v is not None], dtype=float)
        if x.size:
            assert float(row["mean"]) == pytest.approx(x.mean(), abs=1e-8)
            checked += 1
    assert checked > 20
    family = [r for r in paired if r["method"] == "sensitivity" and r["ablate"] == "zero"
              and r["metric"] == "necessity_auc"]
    for r in family:
        d = [run_p[(r["method"], r["ablate"], r["target_tag"])]["necessity_auc"]
             - run_n[(r["method"], r["ablate"], r["target_tag"])]["necessity_auc"]
             for run_p, run_n in zip(per["pca"], per["neurons"]) if (r["method"], r["ablate"], r["target_tag"]) in run_p
             and (r["method"], r["ablate"], r["target_tag"]) in run_n]
        assert float(r["mean_difference"]) == pytest.approx(np.mean(d), abs=1e-8)
        if len(d) > 1 and np.std(d) > 0:
            assert float(r["p"]) == pytest.approx(stats.ttest_1samp(d, 0).pvalue, rel=1e-6)
    ps = [float(r["p"]) for r in family]
    want = holm(ps)
    for r, q in zip(family, want):
        assert (np.isnan(q) and r["p_holm"] == "nan") or float(r["p_holm"]) == pytest.approx(q, rel=1e-6)


def test_a_study_rerun_reuses_every_basis_analysis(bases_study):
    res = run_cli("study", TINY_CFG, "--data", TINY, "--seeds", "3", "--methods", "sensitivity,probeless,random",
                  "--max-k", "3", "--judged-draws", "10", "--matched-draws", "0", "--basis", "neurons,pca,leace",
                  "--no-figures", "--workers", "1", "--no-progress", "--out", bases_study)
    assert res.returncode == 0, res.stderr
    assert "reanalysed" not in res.stderr and "trained" not in res.stderr


def test_a_study_with_bases_but_no_methods_is_a_one_line_error(tmp_path):
    res = run_cli("study", TINY_CFG, "--data", TINY, "--methods", "none", "--basis", "pca", "--out", tmp_path / "s")
    assert res.returncode == 2 and "give --methods" in res.stderr and res.stderr.strip().count("\n") == 0


def test_the_report_answers_neurons_or_directions_with_one_row_per_basis(bases_study):
    import re

    page = (bases_study / "report.html").read_text(encoding="utf-8")
    section = page[page.index('id="neurons-or-directions-base"'):page.index('id="findings-base"')]
    first = section[:section.index("Each basis minus the neurons")]
    assert [b for b in ("neurons", "pca") if re.search(rf"<td[^>]*>{b}</td>", first)] == ["neurons", "pca"]
    assert "Answer for these runs" in section and "paired t-test, Holm" in section and "<li><b>pca</b>" in section


def test_a_study_rerun_redoes_only_the_basis_analysis_that_is_missing(bases_study):
    import shutil

    run = sorted((bases_study / "runs" / "base").iterdir())[0]
    kept = (run / "analysis" / "complete.json").stat().st_mtime_ns
    shutil.rmtree(run / "analysis" / "bases" / "pca")
    res = run_cli("study", TINY_CFG, "--data", TINY, "--seeds", "3", "--methods", "sensitivity,probeless,random",
                  "--max-k", "3", "--judged-draws", "10", "--matched-draws", "0", "--basis", "neurons,pca,leace",
                  "--no-figures", "--workers", "1", "--no-progress", "--out", bases_study)
    assert res.returncode == 0, res.stderr
    assert (run / "analysis" / "bases" / "pca" / "complete.json").is_file()
    assert (run / "analysis" / "complete.json").stat().st_mtime_ns == kept


def test_a_study_with_bases_writes_each_basis_methods_stability_over_the_runs(bases_study):
    rows = _csv(bases_study / "compare" / "base" / "bases" / "pca" / "methods_stability.csv")
    assert rows and {r["method"] for r in rows} >= {"sensitivity"} and "3" in {r["n_pairs"] for r in rows}


def test_leace_across_runs_is_the_mean_of_each_runs_leace_summary(bases_study):
    runs = sorted((bases_study / "runs" / "base").iterdir())
    rows = _csv(bases_study / "compare" / "base" / "leace_across_runs.csv")
    assert rows
    for r in rows:
        own = [float(x["own_drop"]) for run in runs for x in _csv(run / "analysis" / "leace_summary.csv")
               if x["erased_tag"] == r["erased_tag"] and x["score"] == r["score"]]
        assert int(r["n_runs"]) == len(own) and float(r["own_drop_mean"]) == pytest.approx(np.mean(own), abs=1e-8)
    page = (bases_study / "report.html").read_text(encoding="utf-8")
    assert "The supervised reference, LEACE" in page and "Stability across seeds" in page


def test_a_leace_summary_the_analysis_did_not_record_is_not_compared(tiny_run, tmp_path):
    import shutil

    from nerve.analysis.bases_compare import write_bases_comparison

    folders = []
    for seed in (0, 1):
        for name, extra in (("l", ["--basis", "neurons,leace"]), ("a", [])):
            run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
                    *extra, "--max-k", "2", "--random-draws", "2", "--seed", str(seed), "--no-figures", "--out",
                    tmp_path / f"{name}{seed}", check=True)
        shutil.copy(tmp_path / f"l{seed}" / "leace_summary.csv", tmp_path / f"a{seed}")  # copied in
        folders.append(tmp_path / f"a{seed}")
    files = write_bases_comparison(tmp_path, {"neurons": folders})
    assert "leace_across_runs.csv" not in files and not (tmp_path / "leace_across_runs.csv").exists()
