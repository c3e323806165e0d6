"""Findings across runs: planted, absent, reversed and inapplicable effects give holds, inconclusive, fails and
not applicable; Holm runs over every case of the study; the evidence says what it means."""

import types

import numpy as np
import pytest
from analysis_synthetic import ablation_rows

from nerve.analysis.findings import RunEvidence
from nerve.analysis.heldout import METHOD_FIELDS
from nerve.analysis.matrices import corr_matrix, similarity_matrix
from nerve.analysis.stats import holm, one_sample_p
from nerve.analysis.verdicts import FAILS, HOLDS, INCONCLUSIVE, _quantified, evaluate_findings, findings_table

CONLL = ["B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
TYPES = ["LOC", "MISC", "ORG", "PER"]
FAST = {"permutations": 100, "resamples": 2000}


def synthetic_run(seed: int, plant: float = 0.0, tags=CONLL, n: int = 50) -> RunEvidence:
    """Random sensitivities and weights; with ``plant`` != 0 each I-x column is plant · B-x plus a little noise,
    so corr(B-x, I-x) is strongly positive (plant > 0) or negative (plant < 0)."""
    rng = np.random.default_rng(seed)
    s, W = rng.normal(size=(n, len(tags))), rng.normal(size=(len(tags), n))
    if plant:
        for x in {t[2:] for t in tags if t.startswith("B-")}:
            if f"I-{x}" in tags:
                s[:, tags.index(f"I-{x}")] = plant * s[:, tags.index(f"B-{x}")] + 0.3 * rng.normal(size=n)
    return RunEvidence(list(tags), f"seed{seed}", corr_matrix(s), similarity_matrix(W), s=s, W=W)


def finding(results, number, ablate=None):
    return next(f for f in results if f["number"] == number and f["ablate"] == ablate)


@pytest.fixture(scope="module")
def planted():
    return evaluate_findings([synthetic_run(i, plant=1.0) for i in range(10)], statistics=FAST)


def test_planted_effect_holds_with_corrected_p_below_0_01_at_10_runs(planted):
    f1 = finding(planted, 1)
    assert f1["verdict"] == HOLDS and f1["p"] < 0.01 and f1["share"] == 1.0


def test_absent_effect_is_inconclusive():
    f1 = finding(evaluate_findings([synthetic_run(i) for i in range(10)], statistics=FAST), 1)
    assert f1["verdict"] == INCONCLUSIVE and abs(f1["clauses"][0]["effect"]["mean"]) < 0.1


def test_reversed_effect_fails():
    f1 = finding(evaluate_findings([synthetic_run(i, plant=-1.0) for i in range(10)], statistics=FAST), 1)
    assert f1["verdict"] == FAILS and f1["p"] < 0.01
    assert all(c["verdict"] == FAILS for c in f1["clauses"][0]["cases"])


def test_finding_without_its_tags_is_not_applicable():
    b_only = ["B-LOC", "B-ORG", "B-PER", "O"]
    f1 = finding(evaluate_findings([synthetic_run(i, tags=b_only) for i in range(3)], statistics=FAST), 1)
    assert f1["verdict"] == "not applicable" and f1["p"] is None and "not applicable" in f1["evidence"]


def test_case_p_is_the_t_test_of_the_per_run_values_corrected_by_holm_over_the_study(planted):
    cases = [c for f in planted for cl in f["clauses"] for c in cl["cases"]]
    raw = [one_sample_p(c["values"], c["threshold"]) for c in cases]
    assert [c["p"] for c in cases] == pytest.approx(raw, nan_ok=True)
    want = holm(raw)
    assert [c["p_holm"] for c in cases] == pytest.approx([None if np.isnan(p) else p for p in want])


def test_case_interval_brackets_the_mean_of_its_runs(planted):
    case = finding(planted, 1)["clauses"][0]["cases"][0]
    assert case["mean"] == pytest.approx(np.mean(case["values"])) and len(case["values"]) == 10
    assert case["ci"][0] < case["mean"] < case["ci"][1]


def test_results_are_reproducible(planted):
    again = evaluate_findings([synthetic_run(i, plant=1.0) for i in range(10)], statistics=FAST)
    assert [f["clauses"] for f in again] == [f["clauses"] for f in planted]


def _corr_with_negative_pairs(negative: set) -> np.ndarray:
    """A correlation matrix where B-x / I-y (x != y) is -0.3 for the pairs in ``negative``, +0.3 otherwise."""
    M = np.eye(len(CONLL))
    for x in TYPES:
        for y in TYPES:
            if x != y:
                a, b = CONLL.index(f"B-{x}"), CONLL.index(f"I-{y}")
                M[a, b] = M[b, a] = -0.3 if (x, y) in negative else 0.3
    return M


NEGATIVE3 = {("LOC", "MISC"), ("ORG", "PER"), ("PER", "LOC")}


def test_evidence_of_one_run_where_3_of_12_cases_hold_says_so():
    run = RunEvidence(CONLL, "seed42", corr=_corr_with_negative_pairs(NEGATIVE3))
    f3 = finding(evaluate_findings([run], statistics=FAST), 3)
    assert f3["evidence"].startswith("3 of 12 pairs hold in seed42; no test across runs")
    assert f3["verdict"] == INCONCLUSIVE


def test_evidence_across_runs_counts_cases_by_verdict():
    rng = np.random.default_rng(0)
    runs = []
    for i in range(10):
        noise = rng.normal(scale=0.02, size=(9, 9))
        noise = np.triu(noise, 1) + np.triu(noise, 1).T  # symmetric, zero diagonal
        runs.append(RunEvidence(CONLL, f"seed{i}", corr=_corr_with_negative_pairs(NEGATIVE3) + noise))
    f3 = finding(evaluate_findings(runs, statistics=FAST), 3)
    assert f3["evidence"].startswith("holds in 3 of 12 pairs (fails in 9); mean r = ")
    assert f3["verdict"] == FAILS and "over 10 runs" in f3["evidence"]


def test_quantified_most_holds_fails_or_is_inconclusive():
    def cases(verdicts):
        return [{"verdict": v, "p_holm": 0.001 if v != INCONCLUSIVE else 0.5, "mean": 1.0 if v != FAILS else -1.0,
                 "op": ">", "threshold": 0.0} for v in verdicts]

    assert _quantified("most", cases([HOLDS] * 5 + [INCONCLUSIVE] * 3))[0] == HOLDS
    assert _quantified("most", cases([FAILS] * 4 + [HOLDS] * 4))[0] == FAILS
    assert _quantified("most", cases([HOLDS] * 4 + [INCONCLUSIVE] * 4))[0] == INCONCLUSIVE
    assert _quantified("all", cases([HOLDS] * 7 + [FAILS]))[0] == FAILS
    assert _quantified("any", cases([INCONCLUSIVE] * 7 + [HOLDS]))[0] == HOLDS


def _methods_rows(ablate: str, own_drop: float, random_drops) -> np.ndarray:
    """methods.csv rows of the sensitivity method and the random draws, ranked on dev and scored on test."""
    rows = ablation_rows(["B-PER", "I-PER", "O"], own_drop, 0.01, random_drops)
    dtype = [("method", "U11"), ("ablate", "U4"), ("rank_split", "U4"), ("score_split", "U4"),
             *[(f, rows.dtype[f]) for f in METHOD_FIELDS[4:]]]
    out = np.empty(len(rows), dtype=dtype)
    for f in METHOD_FIELDS[4:]:
        out[f] = rows[f]
    out["method"] = np.where(rows["selection"] == "random", "random", "sensitivity")
    out["ablate"], out["rank_split"], out["score_split"] = ablate, "dev", "test"
    return out


def _analysed_with_methods(seed: int, methods: np.ndarray):
    rng = np.random.default_rng(seed)
    return types.SimpleNamespace(tags=["B-PER", "I-PER", "O"], name=f"seed{seed}", s=rng.normal(size=(20, 3)),
                                 W=rng.normal(size=(3, 20)), methods=methods, ablation=None, analysis_dir="")


def test_ablation_findings_read_the_held_out_sweeps_of_each_ablation_value():
    rng = np.random.default_rng(1)
    runs = []
    for i in range(10):
        drops = list(rng.uniform(0, 0.04, 20))
        rows = np.concatenate([_methods_rows("zero", 0.3 + 0.01 * i, drops), _methods_rows("mean", 0.0, drops)])
        runs.append(_analysed_with_methods(i, rows))
    out = evaluate_findings(runs, statistics=FAST)
    zero, mean = finding(out, 9, "zero"), finding(out, 9, "mean")
    assert (zero["rank_split"], zero["score_split"]) == ("dev", "test")
    assert zero["verdict"] == HOLDS and mean["verdict"] == FAILS
    assert "(zero ablation, ranked on dev, scored on test)" in zero["evidence"]


def test_findings_table_names_each_ablation_value_and_the_method(planted):
    table = findings_table(planted)
    assert "9 (zero)" in table and "10 (mean)" in table and "Holm–Bonferroni" in table
