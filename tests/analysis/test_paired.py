"""Paired comparison of methods across seeds: every number equals an independent computation (scipy's paired t,
statsmodels' Holm) on hand-made ``judge_methods`` rows."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from nerve.analysis.heldout import METHOD_FIELDS
from nerve.analysis.judging import SUMMARY_FIELDS, judge_methods
from nerve.analysis.paired import (
    A_BETTER,
    B_BETTER,
    OVERALL,
    PAIRED_FIELDS,
    PairedSpec,
    best_methods,
    paired_comparisons,
    paired_csv,
)

KS = (1, 5, 10)


def _row(method: str, tag: str, k: int, auc: float, own_drop: float = 0.1, baseline: float = 0.8,
         ablate: str = "zero", random_drop: float | None = 0.05) -> dict:
    """One ``judge_methods`` row (its fields exactly)."""
    return {"score": "accuracy", "method": method, "ablate": ablate, "rank_split": "dev", "score_split": "test",
            "target_tag": tag, "k": k, "baseline": baseline, "own_drop": own_drop, "others_mean_drop": 0.01,
            "selectivity": own_drop - 0.01, "auc": auc, "random_mean_drop": random_drop,
            "random_p": None if random_drop is None else 0.05, "n_draws": 20 if random_drop is not None else 0}


def _runs(aucs: dict, tags=("B-PER",), own: dict | None = None) -> list[list[dict]]:
    """aucs: method -> (runs,) or (runs, tags) aucs; own: (method, run, tag) -> own drop at k = 10."""
    out = []
    n = len(next(iter(aucs.values())))
    for i in range(n):
        run = []
        for m, a in aucs.items():
            for j, t in enumerate(tags):
                auc = float(np.atleast_1d(a[i])[j] if np.ndim(a) > 1 else a[i])
                for k in KS:
                    drop = (own or {}).get((m, i, t), 0.1) if k == 10 else 0.05
                    run.append(_row(m, t, k, auc, own_drop=drop))
        out.append(run)
    return out


def _one(rows, tag="B-PER"):
    return next(r for r in rows if r["target_tag"] == tag)


def test_synthetic_rows_have_the_fields_of_judge_methods():
    assert set(_row("probe", "B-PER", 1, 0.1)) == set(SUMMARY_FIELDS)


def test_difference_interval_and_p_equal_scipy_paired_t():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.30, 0.03, 6), rng.normal(0.27, 0.03, 6)
    r = _one(paired_comparisons(_runs({"probe": a, "ig": b}), spec=PairedSpec(delta=0.0), overall=False))
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert r["diff"] == pytest.approx(np.mean(a - b), rel=1e-12)
    assert r["se"] == pytest.approx(np.std(a - b, ddof=1) / np.sqrt(6), rel=1e-9) and r["df"] == 5
    assert (r["lo"], r["hi"]) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert r["p"] == pytest.approx(ref.pvalue, rel=1e-9) and r["p_zero"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_p_zero_is_the_paired_t_p_whatever_delta():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.30, 0.03, 5), rng.normal(0.29, 0.03, 5)
    r = _one(paired_comparisons(_runs({"probe": a, "ig": b}), spec=PairedSpec(delta=0.02), overall=False))
    assert r["p_zero"] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)


def test_the_overall_difference_is_the_paired_t_of_each_runs_mean_over_entity_tags():
    rng = np.random.default_rng(5)
    tags = ("B-PER", "I-PER", "O")
    a, b = rng.normal(0.3, 0.05, (7, 3)), rng.normal(0.25, 0.05, (7, 3))
    r = _one(paired_comparisons(_runs({"probe": a, "ig": b}, tags), spec=PairedSpec(delta=0.0), tags=[]), OVERALL)
    y = (a - b)[:, :2].mean(axis=1)  # O aside
    assert r["n_tags"] == 2 and r["diff"] == pytest.approx(y.mean(), rel=1e-12)
    assert r["p"] == pytest.approx(stats.ttest_1samp(y, 0.0).pvalue, rel=1e-9)


def test_holm_adjusted_p_equals_statsmodels_multipletests():
    rng = np.random.default_rng(6)
    tags = ("B-PER", "I-PER", "B-LOC")
    aucs = {m: rng.normal(mu, 0.03, (5, 3)) for m, mu in (("probe", 0.30), ("ig", 0.28), ("gradxact", 0.25))}
    rows = paired_comparisons(_runs(aucs, tags))
    p = [r["p"] for r in rows]
    assert len(rows) == 3 * 4 and all(r["m"] == 12 for r in rows)
    assert [r["p_holm"] for r in rows] == pytest.approx(list(multipletests(p, method="holm")[1]), rel=1e-12)


def test_each_interval_is_the_t_interval_at_its_holm_level():
    rng = np.random.default_rng(7)
    aucs = {m: rng.normal(mu, 0.02, (6, 2)) for m, mu in (("probe", 0.35), ("ig", 0.28), ("sensitivity", 0.27))}
    rows = paired_comparisons(_runs(aucs, ("B-PER", "I-PER")))
    p = np.array([r["p"] for r in rows])
    order = np.argsort(p, kind="stable")
    rejected = multipletests(p, alpha=0.05, method="holm")[0]
    r_ = int(rejected.sum())
    for step, i in enumerate(order):
        assert rows[i]["alpha"] == pytest.approx(0.05 / (len(p) - min(step, r_)))
        r = rows[i]
        h = stats.t.ppf(1 - r["alpha"] / 2, r["df"]) * r["se"]
        assert (r["lo"], r["hi"]) == (pytest.approx(r["diff"] - h), pytest.approx(r["diff"] + h))


def test_a_planted_difference_is_found_as_a_better():
    rng = np.random.default_rng(8)
    b = rng.normal(0.2, 0.03, 8)
    r = _one(paired_comparisons(_runs({"probe": b + 0.1 + rng.normal(0, 0.01, 8), "ig": b})))
    assert r["verdict"] == A_BETTER and r["better"] == "probe" and r["lo"] > 0.02


def test_a_planted_difference_on_the_second_method_is_b_better():
    rng = np.random.default_rng(9)
    a = rng.normal(0.2, 0.03, 8)
    r = _one(paired_comparisons(_runs({"probe": a, "ig": a + 0.1 + rng.normal(0, 0.01, 8)})))
    assert r["verdict"] == B_BETTER and r["better"] == "ig" and r["hi"] < -0.02


@pytest.mark.parametrize("seed", range(20))
def test_identical_methods_are_never_called_better(seed):
    rng = np.random.default_rng(seed)
    shared = rng.normal(0.3, 0.05, 10)  # the seed's model; both methods measured on it with the same noise
    aucs = {"probe": shared + rng.normal(0, 0.01, 10), "ig": shared + rng.normal(0, 0.01, 10)}
    r = _one(paired_comparisons(_runs(aucs)))
    assert r["verdict"] in ("negligible", "inconclusive") and r["better"] is None


def test_identical_methods_with_enough_runs_are_negligible():
    rng = np.random.default_rng(10)
    shared = rng.normal(0.3, 0.05, 10)
    aucs = {"probe": shared + rng.normal(0, 0.002, 10), "ig": shared + rng.normal(0, 0.002, 10)}
    assert _one(paired_comparisons(_runs(aucs)))["verdict"] == "negligible"


def test_exact_ties_are_counted():
    a = np.array([0.3, 0.25, 0.4, 0.2])
    b = np.array([0.3, 0.2, 0.4, 0.1])  # equal in runs 0 and 2
    r = _one(paired_comparisons(_runs({"probe": a, "ig": b}), overall=False))
    assert r["ties"] == 2 and r["n_cases"] == 4


def test_ceilings_are_counted_per_method_and_for_both_at_the_judged_k():
    a, b = np.array([0.6, 0.5, 0.7, 0.6]), np.array([0.5, 0.5, 0.6, 0.4])
    own = {("probe", 0, "B-PER"): 0.8, ("probe", 1, "B-PER"): 0.8, ("probe", 2, "B-PER"): 0.8,
           ("ig", 1, "B-PER"): 0.8, ("ig", 3, "B-PER"): 0.7}  # baseline 0.8: the score driven to 0
    r = _one(paired_comparisons(_runs({"probe": a, "ig": b}, own=own), overall=False))
    assert (r["ceiling_a"], r["ceiling_b"], r["ceiling_both"], r["k"]) == (3, 1, 1, 10)


def test_a_ceiling_is_read_at_the_judged_k_only():
    a, b = np.array([0.6, 0.5, 0.7]), np.array([0.5, 0.5, 0.6])
    own = {("probe", i, "B-PER"): 0.8 for i in range(3)}  # at the ceiling at k = 10, not at k = 5
    r = _one(paired_comparisons(_runs({"probe": a, "ig": b}, own=own), spec=PairedSpec(k=5), overall=False))
    assert (r["ceiling_a"], r["k"]) == (0, 5)


def test_one_run_cannot_be_tested_and_says_why():
    r = _one(paired_comparisons(_runs({"probe": [0.3], "ig": [0.2]}), overall=False))
    assert r["verdict"] == "cannot be tested" and r["n_runs"] == 1 and "at least 2" in r["reason"]
    assert r["p"] is None and r["p_zero"] is None and r["p_holm"] is None and r["lo"] is None and r["m"] == 0


def test_both_methods_at_the_ceiling_with_equal_curves_are_ties_not_a_verdict():
    own = {(m, i, "B-PER"): 0.8 for m in ("probe", "ig") for i in range(4)}
    r = _one(paired_comparisons(_runs({"probe": [0.7] * 4, "ig": [0.7] * 4}, own=own), overall=False))
    assert (r["ties"], r["ceiling_both"], r["verdict"]) == (4, 4, "cannot be tested") and r["better"] is None


def test_the_same_difference_in_every_run_cannot_be_tested_and_is_left_out_of_holm():
    rows = paired_comparisons(_runs({"probe": [0.3, 0.4, 0.5], "ig": [0.2, 0.3, 0.4],
                                     "sensitivity": [0.1, 0.35, 0.2]}), overall=False)
    flat = next(r for r in rows if (r["method_a"], r["method_b"]) == ("probe", "ig"))
    assert flat["verdict"] == "cannot be tested" and "no spread" in flat["reason"]
    assert all(r["m"] == 2 for r in rows)


def test_best_methods_names_the_largest_mean_and_those_not_separable_from_it():
    rng = np.random.default_rng(11)
    shared = rng.normal(0.0, 0.05, 6)
    aucs = {"ig": shared + 0.30 + rng.normal(0, 0.03, 6), "probe": shared + 0.33 + rng.normal(0, 0.001, 6),
            "selectivity": shared + 0.10 + rng.normal(0, 0.01, 6)}
    best = best_methods(paired_comparisons(_runs(aucs)))["zero"]
    assert best["best"] == "probe" and list(best["means"]) == ["probe", "ig", "selectivity"]
    assert best["worse"] == ["selectivity"] and best["not_separable"] == ["ig"]
    vs = best["comparisons"]["ig"]
    assert (vs["method_a"], vs["method_b"]) == ("probe", "ig") and vs["diff"] > 0 and vs["mean_a"] > vs["mean_b"]


def test_best_methods_places_the_random_draws_at_the_judged_k():
    own = {(m, i, "B-PER"): d for i in range(3) for m, d in (("probe", 0.3), ("ig", 0.02))}
    runs = _runs({"probe": [0.3, 0.32, 0.31], "ig": [0.1, 0.12, 0.09]}, own=own)
    rnd = best_methods(paired_comparisons(runs), per_run=runs)["zero"]["random"]
    assert rnd["random_drop"] == pytest.approx(0.05) and rnd["above_random"] == ["probe"]
    assert rnd["random_rank"] == 2 and rnd["own_drop"] == {"probe": pytest.approx(0.3), "ig": pytest.approx(0.02)}


def _sweep(slopes: dict) -> np.ndarray:
    """Sweep rows (``heldout.method_sweeps``' fields) for tags O, B-PER, B-LOC, k = 0..2: slopes[method] is the
    own-tag accuracy lost per unit."""
    tags, base = ["O", "B-PER", "B-LOC"], {"O": 0.9, "B-PER": 0.8, "B-LOC": 0.7}
    dtype = np.dtype([("method", "U12"), ("ablate", "U4"), ("rank_split", "U4"), ("score_split", "U4"),
                      ("target_tag", "U6"), ("selection", "U6"), ("k", np.int32), ("draw", np.int32),
                      ("eval_tag", "U6"), *[(f, np.float64) for f in ("accuracy", "precision", "recall", "f1")]])
    items = [(m, t, e, k) for m in slopes for t in tags for e in tags for k in range(3)]
    out = np.empty(len(items), dtype=dtype)
    for i, (m, t, e, k) in enumerate(items):
        acc = base[e] - (slopes[m] * k if e == t else 0.01 * k)
        out[i] = (m, "zero", "dev", "test", t, "top", k, 0, e, acc, np.nan, acc, acc)
    assert list(out.dtype.names) == list(METHOD_FIELDS)
    return out


def test_rows_of_judge_methods_are_compared_as_they_are():
    per_run = [judge_methods(_sweep({"probe": 0.2 + s, "ig": 0.1 + 2 * s}), ks=(1, 2)) for s in (0.0, 0.01, 0.03)]
    r = _one([r for r in paired_comparisons(per_run, spec=PairedSpec(k=2)) if r["target_tag"] == OVERALL], OVERALL)
    auc = {(i, x["method"], x["target_tag"]): x["auc"] for i, run in enumerate(per_run) for x in run}
    y = [np.mean([auc[(i, "probe", t)] - auc[(i, "ig", t)] for t in ("B-PER", "B-LOC")]) for i in range(3)]
    assert r["n_runs"] == 3 and r["n_tags"] == 2 and r["diff"] == pytest.approx(np.mean(y))
    assert r["p_zero"] == pytest.approx(stats.ttest_1samp(y, 0.0).pvalue)


def test_paired_csv_has_every_field_and_empty_cells_for_none():
    rows = paired_comparisons(_runs({"probe": [0.3], "ig": [0.2]}), overall=False)
    read = list(csv.DictReader(io.StringIO(paired_csv(rows))))
    assert tuple(read[0]) == PAIRED_FIELDS and len(read) == 1
    assert read[0]["p_holm"] == "" and read[0]["verdict"] == "cannot be tested"
