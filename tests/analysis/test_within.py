"""Within-run uncertainty: the bootstrap over units against the Fisher z standard error on normal data, the
contrast statistic against a plain re-computation, and the binomial variance of accuracy drops."""

import math

import numpy as np
import pytest

from nerve.analysis.findings import RunEvidence, evaluate_rule, load_rules
from nerve.analysis.matrices import corr_matrix
from nerve.analysis.within import (
    ablation_variance,
    baseline_pairs,
    bootstrap_variance,
    drop_variance,
    stack_statistic,
    unit_bootstrap,
)

CONLL = ["B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
RULES = {r["number"]: r for r in load_rules()[0]}


def test_bootstrap_se_of_r_is_near_the_normal_theory_se_on_normal_units():
    rng = np.random.default_rng(0)
    n, rho = 400, 0.5
    s = rng.normal(size=(n, 2))
    s[:, 1] = rho * s[:, 0] + math.sqrt(1 - rho ** 2) * s[:, 1]
    boot = unit_bootstrap(s, "corr", 1000, np.random.default_rng(1))
    se = math.sqrt(bootstrap_variance(boot[:, 0, 1]))
    assert se == pytest.approx((1 - rho ** 2) / math.sqrt(n - 3), rel=0.15)  # delta method of Fisher z


def test_baseline_pairs_range_the_free_variable_over_the_other_types():
    clause = RULES[1]["clause"][0]
    assert baseline_pairs(clause, CONLL, {"x": "LOC"}) == [("B-LOC", "I-MISC"), ("B-LOC", "I-ORG"), ("B-LOC", "I-PER")]
    clause2 = RULES[2]["clause"][0]
    assert baseline_pairs(clause2, CONLL, {"x": "LOC", "y": "ORG"}) == [("B-LOC", "I-ORG"), ("B-ORG", "I-LOC")]


def test_finding_1_statistic_is_r_B_I_same_type_minus_the_mean_over_other_types():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(60, 9))
    M = corr_matrix(s)
    run = RunEvidence(CONLL, "r", M, s=s)
    case = evaluate_rule(RULES[1], run, stats={"permutations": 10, "resamples": 50})["clauses"][0]["cases"][0]
    ix = CONLL.index
    want = M[ix("B-LOC"), ix("I-LOC")] - np.mean([M[ix("B-LOC"), ix(f"I-{y}")] for y in ("MISC", "ORG", "PER")])
    assert case["statistic"] == pytest.approx(want) and case["raw"] == pytest.approx(M[ix("B-LOC"), ix("I-LOC")])
    boot = run.bootstrap("corr", 50, 0)
    vals = stack_statistic(RULES[1]["clause"][0], boot, CONLL, {"x": "LOC"}, ("B-LOC", "I-LOC"))
    assert case["variance"] == pytest.approx(np.var(vals, ddof=1))


def test_drop_variance_is_binomial_over_the_tags_tokens_and_never_0():
    assert drop_variance(0.2, 100) == pytest.approx((20.5 / 101) * (1 - 20.5 / 101) / 100)
    assert drop_variance(0.0, 100) > 0


def test_ablation_variance_adds_the_random_draws_spread_over_their_number():
    drops = np.array([0.01, 0.03, 0.02, 0.04])
    v = ablation_variance("ablation_vs_random", {"top_drop": 0.3}, {"O": 1000}, "O", drops, {})
    want = drop_variance(0.3, 1000) + drop_variance(drops.mean(), 1000) + drops.var(ddof=1) / 4
    assert v == pytest.approx(want)
    assert ablation_variance("ablation_vs_random", {"top_drop": 0.3}, {}, "O", drops, {}) is None
    sel = ablation_variance("ablation_selectivity", {"own_drop": 0.3}, {"O": 1000, "A": 10, "B": 20}, "O", drops,
                            {"A": 0.1, "B": 0.0})
    assert sel == pytest.approx(drop_variance(0.3, 1000) + (drop_variance(0.1, 10) + drop_variance(0, 20)) / 4)
