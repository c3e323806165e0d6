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


def _plain_verdict(d: np.ndarray, delta: float, alpha: float) -> tuple[float, float, float, str]:
    """(decision p, interval low, high, verdict) of the paired differences ``d`` at level ``alpha`` against ±delta,
    by the formula: the t interval, and 2 · the smallest one-sided p of the regions > +δ, < −δ, inside ±δ."""
    n, mean, se = d.size, d.mean(), d.std(ddof=1) / np.sqrt(d.size)
    t = stats.t(n - 1)
    p_hold, p_contra = t.sf((mean - delta) / se), t.sf((-mean - delta) / se)
    p_neg = max(t.sf((mean + delta) / se), t.sf((delta - mean) / se))
    half = t.ppf(1 - alpha / 2) * se
    lo, hi = mean - half, mean + half
    verdict = ("higher than neurons" if lo > delta else "lower than neurons" if hi < -delta else
               "negligible" if -delta < lo and hi < delta else "inconclusive")
    return min(1.0, 2 * min(p_hold, p_contra, p_neg)), lo, hi, verdict


def test_the_bases_means_and_paired_verdicts_against_delta_equal_a_plain_recomputation(bases_study):
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
    judged = 0
    for metric, delta in (("necessity_auc", 0.02), ("units_to_halve", 1.0)):
        family = [r for r in paired if r["method"] == "sensitivity" and r["ablate"] == "zero"
                  and r["metric"] == metric]
        diffs = []
        for r in family:
            key = (r["method"], r["ablate"], r["target_tag"])
            d = np.array([p[key][metric] - n[key][metric] for p, n in zip(per["pca"], per["neurons"])
                          if key in p and key in n and p[key][metric] is not None and n[key][metric] is not None])
            diffs.append(d)
            assert float(r["delta"]) == delta and int(r["n_runs"]) == d.size
            if d.size:
                assert float(r["mean_difference"]) == pytest.approx(d.mean(), abs=1e-8)
        testable = [i for i, d in enumerate(diffs) if d.size > 1 and np.ptp(d) > 0]
        plain_p = {i: _plain_verdict(diffs[i], delta, 0.05)[0] for i in testable}
        adjusted = dict(zip(testable, holm([plain_p[i] for i in testable])))
        order = sorted(testable, key=lambda i: plain_p[i])  # Holm's levels: alpha / (m − j + 1) while it rejects
        level, m = {}, len(order)
        for j, i in enumerate(order):
            if plain_p[i] < 0.05 / (m - j) and all(i2 in level for i2 in order[:j]):
                level[i] = 0.05 / (m - j)
        stop = 0.05 / (m - len(level)) if len(level) < m else None
        for i, (r, d) in enumerate(zip(family, diffs)):
            if i not in testable:
                assert r["verdict"] == "cannot be tested" and r["reason"]
                continue
            assert float(r["p_zero"]) == pytest.approx(stats.ttest_1samp(d, 0).pvalue, rel=1e-6)
            assert float(r["p"]) == pytest.approx(plain_p[i], rel=1e-6, abs=1e-12)
            assert float(r["p_holm"]) == pytest.approx(adjusted[i], rel=1e-6, abs=1e-12)
            alpha = level.get(i, stop)
            _, lo, hi, verdict = _plain_verdict(d, delta, alpha)
            assert float(r["alpha"]) == pytest.approx(alpha, rel=1e-9)
            assert (float(r["ci_low"]), float(r["ci_high"])) == pytest.approx((lo, hi), rel=1e-6, abs=1e-9)
            assert r["verdict"] == verdict
            judged += 1
    assert judged > 5


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
    assert "Answer for these runs" in section and "paired t-test over the runs, Holm" in section
    assert "δ" in section and "<li><b>pca</b>" in section


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


def test_a_measure_a_run_could_not_compute_counts_as_no_value_in_the_paired_comparison():
    from nerve.analysis.bases_compare import _judge, _paired_case

    key = ("sae", "sensitivity", "zero", "B-PER", "monosemanticity")
    case = _paired_case(key, [(0, 0.7), (1, float("nan")), (2, 0.75), (3, 0.72)], {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5})
    _judge([case])
    row = case[0]
    d = np.array([0.2, 0.25, 0.22])
    assert row["n_runs"] == 3 and row["df"] == 2 and row["test"].endswith("t(2)")
    assert row["mean_difference"] == pytest.approx(d.mean()) and row["p_zero"] == pytest.approx(
        stats.ttest_1samp(d, 0).pvalue)
    lone_case = _paired_case(key, [(0, float("nan")), (1, 0.3)], {0: 0.5, 1: 0.5})
    _judge([lone_case])
    lone = lone_case[0]
    assert lone["verdict"] == "cannot be tested" and lone["reason"].startswith("1 run with a value")
