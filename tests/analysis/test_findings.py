"""Findings of Xin, Lin & Yu (2019) in rules.toml, in one run: each holds, fails and is not applicable on hand-made
matrices and sweeps; the within-run nulls equal a plain re-computation."""

import json

import numpy as np
import pytest
from analysis_synthetic import ablation_rows

from nerve.analysis.findings import RunEvidence, entity_types, evaluate_rule, load_rules
from nerve.analysis.matrices import corr_matrix, similarity_matrix
from nerve.analysis.stats import case_rng, empirical_p, unit_permutations
from nerve.analysis.verdicts import evaluate_findings, findings_table, write_findings

CONLL = ["B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
NO_MISC = ["B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
B_ONLY = ["B-LOC", "B-ORG", "B-PER", "O"]
MOVIE_TYPES = ["ACTOR", "CHARACTER", "DIRECTOR", "GENRE", "PLOT", "RATING", "RATINGS_AVERAGE", "REVIEW", "SONG",
               "TITLE", "TRAILER", "YEAR"]
MOVIE = [f"{p}-{t}" for t in MOVIE_TYPES for p in "BI"] + ["O"]
RULES = {r["number"]: r for r in load_rules()[0]}


def matrix(tags, default=0.0, *layers):
    """Symmetric (T, T) matrix: ``default`` off the diagonal, 1 on it, then each {(a, b): value} layer in turn."""
    M = np.full((len(tags), len(tags)), float(default))
    np.fill_diagonal(M, 1.0)
    for layer in layers:
        for (a, b), v in layer.items():
            M[tags.index(a), tags.index(b)] = M[tags.index(b), tags.index(a)] = v
    return M


def status(number, tags, corr=None, similarity=None, ablation=None, ablate="zero"):
    run = RunEvidence(tags, "r", corr, similarity, {} if ablation is None else {"zero": ablation})
    return evaluate_rule(RULES[number], run, ablate)


def _analysed(name, tags, s, W):
    """An analysed run of sensitivities ``s`` (n, T) and weights ``W`` (T, n), without ablation rows."""
    from nerve.analysis.compare import AnalysedRun

    return AnalysedRun(name, "", list(tags), [str(i) for i in range(s.shape[0])], s, W,
                       np.argsort(-s, axis=0).T)


def pairs(tags, pattern_a, pattern_b, value):
    """{(a, b): value} over entity types x (and y != x when a pattern has {y}) where both tags exist."""
    types = entity_types(tags)
    out = {}
    for x in types:
        for y in types:
            a, b = pattern_a.format(x=x, y=y), pattern_b.format(x=x, y=y)
            if a in tags and b in tags and ("{y}" not in pattern_a + pattern_b or x != y):
                out[(a, b)] = value
    return out


def with_O(tags, value):
    """{("O", t): value} for every other tag."""
    return {("O", t): value for t in tags if t != "O"}


# ------------------------------------------------------------------ (1) corr(B-x, I-x) > 0


def test_rule1_holds_when_every_B_I_pair_correlates_positively():
    r = status(1, CONLL, corr=matrix(CONLL, 0.0, pairs(CONLL, "B-{x}", "I-{x}", 0.5)))
    assert r["status"] == "holds" and r["clauses"][0]["n_cases"] == 4


def test_rule1_fails_and_reports_the_failing_type():
    M = matrix(CONLL, 0.0, pairs(CONLL, "B-{x}", "I-{x}", 0.5), {("B-MISC", "I-MISC"): -0.2})
    r = status(1, CONLL, corr=M)
    per_type = {c["binding"]["x"]: c["holds"] for c in r["clauses"][0]["cases"]}
    assert r["status"] == "fails" and per_type == {"LOC": True, "MISC": False, "ORG": True, "PER": True}


def test_rule1_not_applicable_without_I_tags():
    assert status(1, B_ONLY, corr=matrix(B_ONLY, 0.1))["status"] == "not applicable"


# ------------------------------------------------------------------ (2) I-LOC, I-ORG, I-MISC positively correlated


def test_rule2_holds_when_I_LOC_ORG_MISC_correlate_pairwise():
    M = matrix(CONLL, -0.1, {("I-LOC", "I-ORG"): 0.3, ("I-LOC", "I-MISC"): 0.2, ("I-ORG", "I-MISC"): 0.4})
    r = status(2, CONLL, corr=M)
    assert r["status"] == "holds" and r["clauses"][0]["n_cases"] == 3


def test_rule2_fails_when_one_pair_is_negative():
    M = matrix(CONLL, -0.1, {("I-LOC", "I-ORG"): 0.3, ("I-LOC", "I-MISC"): 0.2, ("I-ORG", "I-MISC"): -0.4})
    assert status(2, CONLL, corr=M)["status"] == "fails"


def test_rule2_not_applicable_without_MISC():
    r = status(2, NO_MISC, corr=matrix(NO_MISC, 0.5))
    assert r["status"] == "not applicable" and "MISC" in r["reason"]


# ------------------------------------------------------------------ (3) corr(B-x, I-y) < 0, x != y


def test_rule3_holds_when_every_B_x_I_y_is_negative():
    r = status(3, CONLL, corr=matrix(CONLL, -0.2))
    assert r["status"] == "holds" and r["clauses"][0]["n_cases"] == 12


def test_rule3_fails_on_one_positive_B_x_I_y():
    assert status(3, CONLL, corr=matrix(CONLL, -0.2, {("B-LOC", "I-PER"): 0.1}))["status"] == "fails"


def test_rule3_not_applicable_with_a_single_type():
    tags = ["B-LOC", "I-LOC", "O"]
    assert status(3, tags, corr=matrix(tags, -0.2))["status"] == "not applicable"


# ------------------------------------------------------------------ (4) corr(O, I-x) < 0


def test_rule4_holds_when_O_anticorrelates_with_every_I_tag():
    assert status(4, CONLL, corr=matrix(CONLL, 0.1, pairs(CONLL, "O", "I-{x}", -0.3)))["status"] == "holds"


def test_rule4_fails_when_O_correlates_with_an_I_tag():
    M = matrix(CONLL, 0.1, pairs(CONLL, "O", "I-{x}", -0.3), {("O", "I-PER"): 0.2})
    assert status(4, CONLL, corr=M)["status"] == "fails"


def test_rule4_not_applicable_without_an_O_tag():
    tags = ["B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert status(4, tags, corr=matrix(tags, -0.3))["status"] == "not applicable"


# ------------------------------------------------------------------ (5) B-x, I-x not each other's most similar


def sim5(tags, *extra):
    """B-x closest to B-y (0.5), I-x closest to I-y (0.5), B-x / I-x at 0.1."""
    return matrix(tags, 0.0, pairs(tags, "B-{x}", "B-{y}", 0.5), pairs(tags, "I-{x}", "I-{y}", 0.5),
                  pairs(tags, "B-{x}", "I-{x}", 0.1), *extra)


def test_rule5_holds_when_B_and_I_look_elsewhere():
    assert status(5, CONLL, similarity=sim5(CONLL))["status"] == "holds"


def test_rule5_fails_when_B_PER_and_I_PER_are_most_similar():
    r = status(5, CONLL, similarity=sim5(CONLL, {("B-PER", "I-PER"): 0.9}))
    failing = [c["key"] for c in r["clauses"][0]["cases"] if not c["holds"]]
    assert r["status"] == "fails" and failing == ["B-PER/I-PER"]


def test_rule5_fails_when_only_I_x_finds_B_x_most_similar():
    M = sim5(CONLL, {("B-LOC", "I-LOC"): 0.45, ("B-LOC", "B-ORG"): 0.6},
             {("I-LOC", f"I-{y}"): 0.3 for y in ("MISC", "ORG", "PER")})  # I-LOC's closest: B-LOC
    case = status(5, CONLL, similarity=M)["clauses"][0]["cases"][0]
    assert case["most_similar_to_a"] == "B-ORG" and case["most_similar_to_b"] == "B-LOC" and not case["holds"]


def test_rule5_not_applicable_with_only_B_and_O_tags():
    assert status(5, B_ONLY, similarity=matrix(B_ONLY, 0.2))["status"] == "not applicable"


# ------------------------------------------------------------------ (6) I-LOC, I-ORG, I-MISC similar weights


def test_rule6_holds_on_positive_cosines():
    M = matrix(CONLL, -0.1, {("I-LOC", "I-ORG"): 0.3, ("I-LOC", "I-MISC"): 0.2, ("I-ORG", "I-MISC"): 0.1})
    assert status(6, CONLL, similarity=M)["status"] == "holds"


def test_rule6_fails_on_a_negative_cosine():
    M = matrix(CONLL, -0.1, {("I-LOC", "I-ORG"): 0.3, ("I-LOC", "I-MISC"): -0.2, ("I-ORG", "I-MISC"): 0.1})
    assert status(6, CONLL, similarity=M)["status"] == "fails"


def test_rule6_not_applicable_without_MISC():
    assert status(6, NO_MISC, similarity=matrix(NO_MISC, 0.3))["status"] == "not applicable"


# ------------------------------------------------------------------ (7) B-x closer to some B-y than to I-x, x != PER


def test_rule7_holds_and_PER_is_an_exception():
    r = status(7, CONLL, similarity=sim5(CONLL, {("B-PER", "I-PER"): 0.9}))
    keys = [c["key"] for c in r["clauses"][0]["cases"]]
    assert r["status"] == "holds" and keys == ["B-LOC/I-LOC", "B-MISC/I-MISC", "B-ORG/I-ORG"]


def test_rule7_fails_when_B_LOC_is_closest_to_I_LOC():
    assert status(7, CONLL, similarity=sim5(CONLL, {("B-LOC", "I-LOC"): 0.9}))["status"] == "fails"


def test_rule7_not_applicable_with_only_the_excepted_type():
    tags = ["B-PER", "I-PER", "O"]
    assert status(7, tags, similarity=matrix(tags, 0.1))["status"] == "not applicable"


# ------------------------------------------------------------------ (8) O dissimilar to most, closest to I-MISC


def test_rule8_holds_when_O_is_negative_to_most_and_closest_to_I_MISC():
    M = matrix(CONLL, 0.1, with_O(CONLL, -0.3), {("O", "I-MISC"): 0.2})
    r = status(8, CONLL, similarity=M)
    assert r["status"] == "holds" and r["clauses"][0]["n_holding"] == 7 and r["clauses"][0]["n_cases"] == 8


def test_rule8_fails_when_O_is_closest_to_another_tag():
    M = matrix(CONLL, 0.1, with_O(CONLL, -0.3), {("O", "I-ORG"): 0.4})
    r = status(8, CONLL, similarity=M)
    assert r["status"] == "fails" and r["clauses"][1]["cases"][0]["most_similar_to_a"] == "I-ORG"


def test_rule8_fails_when_O_is_positive_to_most_tags():
    M = matrix(CONLL, 0.1, {("O", "I-MISC"): 0.2})
    r = status(8, CONLL, similarity=M)
    assert r["status"] == "fails" and [c["status"] for c in r["clauses"]] == ["fails", "holds"]


def test_rule8_not_applicable_without_I_MISC():
    assert status(8, NO_MISC, similarity=matrix(NO_MISC, -0.3))["status"] == "not applicable"


# ------------------------------------------------------------------ (9), (10) ablation


RANDOM = list(np.random.default_rng(0).uniform(0.0, 0.04, size=20))
TAGS3 = ["B-PER", "I-PER", "O"]


def test_rule9_holds_when_top_units_hurt_more_than_random_ones():
    r = status(9, TAGS3, ablation=ablation_rows(TAGS3, 0.3, 0.01, RANDOM))
    case = r["clauses"][0]["cases"][0]
    assert r["status"] == "holds" and case["k"] == 10
    assert case["statistic"] == pytest.approx(0.3 - np.mean(RANDOM))


def test_rule9_null_is_where_the_top_drop_lies_among_the_random_draws():
    random = [0.01] * 15 + [0.5] * 5  # 5 of 20 random draws hurt more than the top 10
    case = status(9, TAGS3, ablation=ablation_rows(TAGS3, 0.3, 0.01, random))["clauses"][0]["cases"][0]
    assert case["null_p"] == pytest.approx((1 + 5) / (1 + 20)) and case["null_n"] == 20


def test_rule9_reads_the_sweep_of_the_ablation_value_asked_for():
    run = RunEvidence(TAGS3, "r", sweeps={"mean": ablation_rows(TAGS3, 0.3, 0.01, RANDOM)})
    assert evaluate_rule(RULES[9], run, "mean")["status"] == "holds"
    r = evaluate_rule(RULES[9], run, "zero")
    assert r["status"] == "not applicable" and r["reason"] == "no zero-ablation sweep"


def test_rule9_fails_when_top_units_hurt_less_than_random_ones():
    assert status(9, TAGS3, ablation=ablation_rows(TAGS3, 0.01, 0.01, RANDOM))["status"] == "fails"


def test_rule9_uses_the_largest_k_when_the_sweep_stops_below_10():
    r = status(9, TAGS3, ablation=ablation_rows(TAGS3, 0.3, 0.01, RANDOM, max_k=5))
    assert r["clauses"][0]["k"] == 5


def test_rule9_not_applicable_without_ablation_or_with_k_0_only():
    assert status(9, TAGS3, ablation=None)["status"] == "not applicable"
    assert status(9, TAGS3, ablation=ablation_rows(TAGS3, 0.3, 0.01, RANDOM, max_k=0))["status"] == "not applicable"


def test_rule10_holds_when_a_tag_loses_more_than_the_mean_of_the_others():
    rows = ablation_rows(TAGS3, 0.3, 0.05, RANDOM)
    case = status(10, TAGS3, ablation=rows)["clauses"][0]["cases"][0]
    assert case["holds"] and case["own_drop"] == pytest.approx(0.3) and case["others_mean_drop"] == pytest.approx(0.05)


def test_rule10_fails_when_other_tags_lose_more():
    assert status(10, TAGS3, ablation=ablation_rows(TAGS3, 0.1, 0.2, RANDOM))["status"] == "fails"


def test_rule10_holds_on_the_mean_even_when_one_other_tag_loses_more():
    rows = ablation_rows(TAGS3, 0.3, 0.05, RANDOM)
    m = (rows["target_tag"] == "B-PER") & (rows["selection"] == "top") & (rows["k"] == 10) & (rows["eval_tag"] == "O")
    rows["accuracy"][m] = 0.9 - 0.4
    case = status(10, TAGS3, ablation=rows)["clauses"][0]["cases"][0]
    assert case["holds"] and not case["holds_vs_max"] and case["others_max_tag"] == "O"


def test_rule10_not_applicable_without_ablation():
    assert status(10, TAGS3)["status"] == "not applicable"


def test_rule10_null_is_the_selectivity_of_each_random_draw():
    rows = ablation_rows(TAGS3, 0.3, 0.05, RANDOM)
    case = status(10, TAGS3, ablation=rows)["clauses"][0]["cases"][0]
    null = np.array(RANDOM) - 0.05  # each draw: its own drop minus the other tags' (0.05 each)
    assert case["null_p"] == pytest.approx(empirical_p(0.3 - 0.05, null)) and case["null_n"] == 20


# ------------------------------------------------------------------ across runs, other tag sets, files


def test_corr_null_equals_correlations_recomputed_with_the_units_permuted():
    rng = np.random.default_rng(3)
    s, W = rng.normal(size=(30, 9)), rng.normal(size=(9, 30))
    run = RunEvidence(CONLL, "r", corr_matrix(s), similarity_matrix(W), s=s, W=W)
    stats = {"permutations": 50, "seed": 7}
    case = evaluate_rule(RULES[1], run, stats=stats)["clauses"][0]["cases"][0]  # B-LOC/I-LOC: permute I-LOC
    a, b = CONLL.index("B-LOC"), CONLL.index("I-LOC")
    perms = unit_permutations(30, 50, case_rng(7, "corr_B_I_same_type/0/B-LOC/I-LOC"))
    null = []
    for perm in perms:
        t = s.copy()
        t[:, b] = s[perm, b]
        null.append(corr_matrix(t)[a, b])
    assert case["null_p"] == pytest.approx(empirical_p(corr_matrix(s)[a, b], np.array(null)))
    assert case["null_mean"] == pytest.approx(np.mean(null))


def test_is_most_null_equals_margins_recomputed_with_the_units_permuted():
    rng = np.random.default_rng(4)
    s, W = rng.normal(size=(30, 9)), rng.normal(size=(9, 30))
    run = RunEvidence(CONLL, "r", corr_matrix(s), similarity_matrix(W), s=s, W=W)
    case = evaluate_rule(RULES[5], run, stats={"permutations": 40, "seed": 1})["clauses"][0]["cases"][0]
    a, b = CONLL.index("B-LOC"), CONLL.index("I-LOC")
    others = [c for c in range(9) if c not in (a, b)]
    null = []
    for perm in unit_permutations(30, 40, case_rng(1, "sim_B_I_not_most_similar/0/B-LOC/I-LOC")):
        t = W.copy()
        t[b] = W[b, perm]
        M = similarity_matrix(t)
        null.append(max(M[a, b] - M[a, others].max(), M[b, a] - M[b, others].max()))
    M = similarity_matrix(W)
    observed = max(M[a, b] - M[a, others].max(), M[b, a] - M[b, others].max())
    assert case["statistic"] == pytest.approx(observed)
    assert case["null_p"] == pytest.approx(empirical_p(-observed, -np.array(null)))


def test_nulls_are_reproducible_by_seed_and_change_with_it():
    rng = np.random.default_rng(5)
    s, W = rng.normal(size=(30, 9)), rng.normal(size=(9, 30))
    run = RunEvidence(CONLL, "r", corr_matrix(s), similarity_matrix(W), s=s, W=W)

    def nulls(seed):
        cases = evaluate_rule(RULES[3], run, stats={"permutations": 30, "seed": seed})["clauses"][0]["cases"]
        return [c["null_mean"] for c in cases]

    assert nulls(0) == nulls(0) and nulls(0) != nulls(1)


def test_movie_tag_set_runs_and_conll_named_rules_are_not_applicable():
    rng = np.random.default_rng(1)
    run = _analysed("movie", MOVIE, rng.normal(size=(40, 25)), rng.normal(size=(25, 40)))
    out = {f["number"]: f for f in evaluate_findings([run])}
    assert {n for n, f in out.items() if f["applicable_runs"] == 0} == {2, 6, 8, 9, 10}
    assert {n for n, f in out.items() if f["verdict"] == "not applicable"} == {2, 6, 8, 9, 10}
    assert all(out[n]["applicable_runs"] == 1 for n in (1, 3, 4, 5, 7))
    assert out[3]["runs"][0]["clauses"][0]["n_cases"] == 12 * 11


def test_write_findings_is_strict_json_list(tmp_path):
    s = np.random.default_rng(2).normal(size=(10, 9))
    s[:, 3] = np.nan  # a tag never predicted: NaN column -> NaN correlations -> skipped cases
    results = evaluate_findings([_analysed("x", CONLL, s, np.ones((9, 10)))])
    write_findings(tmp_path / "findings.json", results)
    data = json.loads((tmp_path / "findings.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert [f["number"] for f in data] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 10]
    assert "corr_B_I_same_type" in findings_table(results)


def test_load_rules_rejects_an_unknown_kind(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text('[[finding]]\nnumber = 1\nid = "x"\ndescription = "d"\n[[finding.clause]]\nkind = "magic"\n')
    with pytest.raises(ValueError, match="expected kind in compare"):
        load_rules(p)


def test_load_rules_rejects_an_unknown_statistics_key(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text('[statistics]\nalpah = 0.01\n[[finding]]\nnumber = 1\nid = "x"\ndescription = "d"\n'
                 '[[finding.clause]]\nkind = "compare"\nmatrix = "corr"\na = "O"\nb = "*"\nop = ">"\nvalue = 0\n')
    with pytest.raises(ValueError, match=r"\[statistics\] expects keys alpha"):
        load_rules(p)


def test_load_rules_rejects_an_unknown_ablation_value(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text('[[finding]]\nnumber = 9\nid = "x"\ndescription = "d"\nablate = ["half"]\n'
                 '[[finding.clause]]\nkind = "ablation_vs_random"\na = "*"\nk = 10\n')
    with pytest.raises(ValueError, match="expected ablate to list some of zero, mean"):
        load_rules(p)


def test_every_packaged_clause_names_its_smallest_effect_and_findings_1_2_are_contrasts():
    rules, stats = load_rules()
    assert all("sesoi" in c for r in rules for c in r["clause"])
    assert {r["number"] for r in rules for c in r["clause"] if c.get("baseline")} == {1, 2}
    assert RULES[1]["clause"][0]["sesoi"] == 0.1 and RULES[9]["clause"][0]["sesoi"] == 0.02
    assert stats["resamples"] == 200 and "level" not in stats


def test_load_rules_rejects_a_baseline_outside_compare_and_a_bad_sesoi(tmp_path):
    p = tmp_path / "rules.toml"
    head = '[[finding]]\nnumber = 1\nid = "x"\ndescription = "d"\n[[finding.clause]]\n'
    p.write_text(head + 'kind = "is_most"\nmatrix = "corr"\na = "O"\nb = "I-MISC"\nbaseline = [["O", "B-MISC"]]\n')
    with pytest.raises(ValueError, match="expected baseline"):
        load_rules(p)
    p.write_text(head + 'kind = "compare"\nmatrix = "corr"\na = "O"\nb = "*"\nop = ">"\nvalue = 0\nsesoi = -1\n')
    with pytest.raises(ValueError, match="expected sesoi"):
        load_rules(p)
