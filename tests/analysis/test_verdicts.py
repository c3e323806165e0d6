"""Findings across runs: planted, absent, reversed, negligible and inapplicable effects give holds, inconclusive,
contradicted, negligible and not applicable; each case's combined estimate is the random-effects meta-analysis of
its per-run statistics and within-run variances, decided under Holm over every case of the study; degenerate
studies cannot be tested; the evidence says what it means."""

import types

import numpy as np
import pytest
from analysis_synthetic import ablation_rows
from statsmodels.stats.multitest import multipletests

from nerve.analysis.findings import RunEvidence
from nerve.analysis.heldout import METHOD_FIELDS
from nerve.analysis.matrices import corr_matrix, similarity_matrix
from nerve.analysis.meta import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    MOST,
    NEGLIGIBLE,
    NOT_TESTABLE,
    SEEDS,
    THESE,
    decide,
    random_effects,
)
from nerve.analysis.verdicts import case_words, evaluate_findings, findings_table, quantified

CONLL = ["B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
TYPES = ["LOC", "MISC", "ORG", "PER"]
FAST = {"permutations": 100, "resamples": 100}


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


def cases_of(results):
    return [c for f in results for cl in f["clauses"] for c in cl["cases"]]


@pytest.fixture(scope="module")
def planted():
    return evaluate_findings([synthetic_run(i, plant=1.0) for i in range(10)], statistics=FAST)


def test_planted_effect_holds_with_corrected_p_below_0_01_at_10_runs(planted):
    f1 = finding(planted, 1)
    assert f1["verdict"] == HOLDS and f1["p"] < 0.01 and f1["share"] == 1.0
    case = f1["clauses"][0]["cases"][0]
    assert case["population"] == SEEDS and case["within"]["population"] == THESE
    assert case["within"]["verdict"] == HOLDS and "Holm over" in case["correction"]


def test_absent_effect_is_inconclusive():
    f1 = finding(evaluate_findings([synthetic_run(i) for i in range(10)], statistics=FAST), 1)
    assert f1["verdict"] == INCONCLUSIVE and abs(f1["clauses"][0]["effect"]["mean"]) < 0.1


def test_reversed_effect_is_contradicted():
    f1 = finding(evaluate_findings([synthetic_run(i, plant=-1.0) for i in range(10)], statistics=FAST), 1)
    assert f1["verdict"] == CONTRADICTED and f1["p"] < 0.01
    assert all(c["verdict"] == CONTRADICTED for c in f1["clauses"][0]["cases"])


def test_a_contrast_equal_to_its_structural_baseline_is_negligible(planted):
    # I-x = B-x + noise: r(I-x, I-y) equals r(B-x, I-y), so finding 2's contrast is 0 with a tight interval
    f2 = finding(planted, 2)
    assert f2["verdict"] == NEGLIGIBLE and f2["counts"][NEGLIGIBLE] == 3
    case = f2["clauses"][0]["cases"][0]
    assert case["statistic"] == "r − baseline" and abs(case["mean"]) < 0.05


def test_finding_without_its_tags_is_not_applicable():
    b_only = ["B-LOC", "B-ORG", "B-PER", "O"]
    f1 = finding(evaluate_findings([synthetic_run(i, tags=b_only) for i in range(3)], statistics=FAST), 1)
    assert f1["verdict"] == "not applicable" and f1["p"] is None and "not applicable" in f1["evidence"]


def test_case_estimate_is_the_random_effects_combination_of_values_and_variances(planted):
    for c in cases_of(planted)[:20]:
        e = random_effects(c["values"], c["variances"])
        assert c["mean"] == pytest.approx(e.effect) and c["se"] == pytest.approx(e.se) and c["df"] == 9
        sign = 1 if c["op"] == ">" else -1
        d = decide(e, c["threshold"], sign, c["sesoi"], 1 - c["level"])
        assert c["ci"] == pytest.approx(list(d.interval)) and c["verdict"] == d.verdict


def test_case_p_holm_equals_statsmodels_holm_over_the_study(planted):
    cases = [c for c in cases_of(planted) if c["p"] is not None]
    _, want, _, _ = multipletests([c["p"] for c in cases], method="holm")
    assert [c["p_holm"] for c in cases] == pytest.approx(list(want))
    for c in cases:
        assert (c["verdict"] in (HOLDS, CONTRADICTED, NEGLIGIBLE)) == (c["p_holm"] < 0.05)


def test_results_are_reproducible(planted):
    again = evaluate_findings([synthetic_run(i, plant=1.0) for i in range(10)], statistics=FAST)
    assert [f["clauses"] for f in again] == [f["clauses"] for f in planted]


def test_a_small_effect_none_beyond_its_null_never_holds():
    # issue 29 point 2: r(B-x, I-x) = 0.06 in ten runs, below the smallest effect of interest
    runs = []
    for i in range(10):
        rng = np.random.default_rng(100 + i)
        s = rng.normal(size=(200, 9))
        for x in TYPES:
            b, ii = CONLL.index(f"B-{x}"), CONLL.index(f"I-{x}")
            s[:, ii] = 0.06 * s[:, b] + np.sqrt(1 - 0.06 ** 2) * s[:, ii]
        runs.append(RunEvidence(CONLL, f"seed{i}", corr_matrix(s), s=s))
    f1 = finding(evaluate_findings(runs, statistics=FAST), 1)
    assert f1["verdict"] != HOLDS and f1["counts"][HOLDS] == 0


def test_copies_of_one_run_are_not_tested_from_zero_spread():
    run = synthetic_run(0)
    copies = [RunEvidence(run.tags, f"copy{i}", run.corr, run.similarity, s=run.s, W=run.W) for i in range(10)]
    f1 = finding(evaluate_findings(copies, statistics=FAST), 1)
    case = f1["clauses"][0]["cases"][0]
    assert case["tau2"] == 0 and case["se"] > 0.02  # the within-run variance, not 0
    bare = [RunEvidence(run.tags, f"copy{i}", run.corr) for i in range(10)]  # no within-run variance either
    f1 = finding(evaluate_findings(bare, statistics=FAST), 1)
    assert f1["verdict"] == NOT_TESTABLE and all(c["verdict"] == NOT_TESTABLE for c in f1["clauses"][0]["cases"])
    assert "no spread" in f1["clauses"][0]["cases"][0]["reason"]


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
    assert "(3 of 12 pairs hold in seed42; no test across runs" in f3["evidence"]
    assert f3["verdict"] == NOT_TESTABLE  # one run without a within-run variance


def test_one_run_with_its_within_run_variance_is_judged_for_that_model():
    f1 = finding(evaluate_findings([synthetic_run(0, plant=1.0)], statistics=FAST), 1)
    case = f1["clauses"][0]["cases"][0]
    assert f1["verdict"] == HOLDS and case["population"] == THESE and case["test"].startswith("fixed-effect")


def test_evidence_across_runs_counts_cases_by_verdict():
    rng = np.random.default_rng(0)
    runs = []
    for i in range(10):
        noise = rng.normal(scale=0.02, size=(9, 9))
        noise = np.triu(noise, 1) + np.triu(noise, 1).T  # symmetric, zero diagonal
        runs.append(RunEvidence(CONLL, f"seed{i}", corr=_corr_with_negative_pairs(NEGATIVE3) + noise))
    f3 = finding(evaluate_findings(runs, statistics=FAST), 3)
    assert f3["evidence"].startswith("holds in 3 of 12 pairs (contradicted in 9); r = ")
    assert f3["verdict"] == CONTRADICTED and "over 10 runs" in f3["evidence"]


def _cases(verdicts):
    return [{"verdict": v, "p_holm": 0.001 if v != INCONCLUSIVE else 0.5} for v in verdicts]


def test_quantified_reports_holds_contradicted_negligible_or_inconclusive():
    assert quantified("most", _cases([HOLDS] * 5 + [INCONCLUSIVE] * 3))[0] == HOLDS
    assert quantified("most", _cases([CONTRADICTED] * 4 + [HOLDS] * 4))[0] == CONTRADICTED
    assert quantified("most", _cases([HOLDS] * 4 + [INCONCLUSIVE] * 4))[0] == INCONCLUSIVE
    assert quantified("all", _cases([HOLDS] * 3 + [CONTRADICTED] * 9))[0] == CONTRADICTED
    assert quantified("any", _cases([INCONCLUSIVE] * 7 + [HOLDS]))[0] == HOLDS
    assert quantified("all", _cases([NEGLIGIBLE] * 3))[0] == NEGLIGIBLE
    assert quantified("all", _cases([NOT_TESTABLE] * 3)) == (NOT_TESTABLE, None)


def test_all_with_one_negligible_case_among_holding_ones_holds_for_most():
    # issue 29 point 4: 7 of 9 tags hold, 2 negligible: neither "holds" nor a red "fails"
    verdict, p = quantified("all", _cases([HOLDS] * 7 + [NEGLIGIBLE] * 2))
    assert verdict == MOST and p == 0.001
    assert quantified("all", _cases([HOLDS] * 5 + [NEGLIGIBLE] + [INCONCLUSIVE] * 3))[0] == MOST
    assert quantified("all", _cases([HOLDS] * 7 + [CONTRADICTED]))[0] == MOST
    assert quantified("most", _cases([HOLDS] * 7 + [NEGLIGIBLE] * 2))[0] == HOLDS


def test_all_that_holds_in_a_minority_of_cases_is_negligible_or_contradicted():
    assert quantified("all", _cases([HOLDS] * 4 + [NEGLIGIBLE] * 5))[0] == NEGLIGIBLE
    assert quantified("all", _cases([HOLDS] * 4 + [INCONCLUSIVE] * 4 + [NEGLIGIBLE]))[0] == NEGLIGIBLE
    assert quantified("all", _cases([HOLDS] * 8 + [INCONCLUSIVE]))[0] == INCONCLUSIVE


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


def _ablation_runs(own_drop, random_lo, random_hi, support=None, n=10):
    rng = np.random.default_rng(1)
    runs = []
    for i in range(n):
        drops = list(rng.uniform(random_lo, random_hi, 20))
        rows = np.concatenate([_methods_rows("zero", own_drop + 0.01 * i, drops), _methods_rows("mean", 0.0, drops)])
        run = _analysed_with_methods(i, rows)
        if support:
            run.accuracy = {"support": support}
        runs.append(run)
    return evaluate_findings(runs, statistics=FAST)


def test_ablation_findings_read_the_held_out_sweeps_of_each_ablation_value():
    out = _ablation_runs(0.3, 0.04, 0.08)
    zero, mean = finding(out, 9, "zero"), finding(out, 9, "mean")
    assert (zero["rank_split"], zero["score_split"]) == ("dev", "test")
    assert zero["verdict"] == HOLDS and mean["verdict"] == CONTRADICTED
    assert "(zero ablation, ranked on dev, scored on test)" in zero["evidence"]


def test_ablation_variance_from_token_counts_enters_the_verdict():
    support = {"B-PER": 400, "I-PER": 300, "O": 5000}
    out = _ablation_runs(0.3, 0.04, 0.08, support)
    case = finding(out, 9, "zero")["clauses"][0]["cases"][0]
    assert all(v is not None and v > 0 for v in case["variances"]) and case["within_variance"]
    assert case["within"]["population"] == THESE and case["within"]["verdict"] == HOLDS


def negligible_runs(n: int) -> list:
    """n runs whose top-k drop exceeds the random draws' by +0.0017 recall (below δ = 0.02) on many tokens."""
    support = {"B-PER": 3000, "I-PER": 3000, "O": 30000}
    rng = np.random.default_rng(2)
    runs = []
    for i in range(n):
        drops = list(rng.uniform(0.0, 0.002, 20))
        run = _analysed_with_methods(i, _methods_rows("zero", float(np.mean(drops)) + 0.0017, drops))
        run.accuracy = {"support": support}
        runs.append(run)
    return runs


def test_an_excess_drop_below_the_smallest_effect_is_negligible_not_holding():
    # issue 29 point 4: an excess drop of +0.0017 made finding 9 "hold"; with δ = 0.02 it is negligible
    f9 = finding(evaluate_findings(negligible_runs(10), statistics=FAST), 9, "zero")
    assert f9["verdict"] == NEGLIGIBLE and f9["counts"][HOLDS] == 0


def test_a_random_draw_p_at_its_floor_reads_below_one_over_draws_plus_one():
    out = _ablation_runs(0.3, 0.04, 0.08)
    case = finding(out, 9, "zero")["clauses"][0]["cases"][0]
    assert case["null_floor"] == pytest.approx(1 / 21) and "median p < 1/21" in case_words(case)


def test_findings_table_names_each_ablation_value_and_the_method(planted):
    table = findings_table(planted)
    assert "9 (zero)" in table and "10 (mean)" in table and "Hartung–Knapp–Sidik–Jonkman" in table
    assert "Holm" in table
