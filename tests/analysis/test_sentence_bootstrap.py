"""The per-sentence counts an analysis saves beside its sweeps (ablation_sentences.npz, methods_sentences.npz) and
the bootstrap over sentences of the ablation statistics (issue 29): the counts against the rows and a plain
re-decoding, the vectorised bootstrap against a loop with the same seed, against the binomial variance on
independent tokens, and above it on sentences whose tokens go right or wrong together."""

import dataclasses
import json

import numpy as np
import pytest
from analysis_synthetic import make_arrays

from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.compare import load_run_analysis
from nerve.analysis.core import AnalysisSpec
from nerve.analysis.findings import RunEvidence, load_rules
from nerve.analysis.findings_ablation import BINOMIAL, SENTENCE_BOOTSTRAP, RunWithin, ablation_case, judged_ks
from nerve.analysis.heldout import METHOD_SENTENCES, read_methods_csv
from nerve.analysis.ranking import rank_units
from nerve.analysis.sensitivity import sensitivity
from nerve.analysis.sentence_counts import SENTENCES, SweepCounts, read_sentence_counts
from nerve.analysis.stats import case_rng
from nerve.analysis.verdicts import evaluate_findings
from nerve.analysis.within import SentenceCase, ablation_variance, drop_variance, sentence_statistics, sentence_variance
from nerve.analyze import analyze_arrays
from nerve.method_stage import write_methods

RULES = {r["number"]: r for r in load_rules()[0]}
MAX_K, DRAWS = 4, 3
FAST = {"permutations": 10, "resamples": 50}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """An analysis of synthetic arrays (softmax) with held-out methods (ranked and scored on the same arrays)."""
    arrays = make_arrays(n_tokens=240, n=6, n_sentences=30, seed=4)
    out = tmp_path_factory.mktemp("sentences") / "a"
    spec = AnalysisSpec(max_k=MAX_K, random_draws=DRAWS, figures=(), methods=("sensitivity", "probeless", "random"),
                        interventions=("zero", "mean"))
    analyze_arrays(arrays, out, spec, extra=lambda d: write_methods(arrays, arrays, spec, d), progress=False)
    return arrays, out


def _per_sentence(arrays, units) -> np.ndarray:
    """(S, T) right tokens per sentence and gold tag after zeroing ``units``, by a plain re-decoding and loop."""
    h = arrays["h"].astype(np.float64)
    h[:, list(units)] = 0.0
    pred = (h @ arrays["W"].astype(np.float64).T + arrays["b"].astype(np.float64)).argmax(axis=1)
    starts = [*arrays["sentence_starts"].tolist(), len(pred)]
    out = np.zeros((len(starts) - 1, len(arrays["tags"])), np.int64)
    for s, (a, z) in enumerate(zip(starts[:-1], starts[1:])):
        for g, p in zip(arrays["gold"][a:z], pred[a:z]):
            out[s, g] += int(g == p)
    return out


def _acc(rows, target, selection, k, eval_tag, **match):
    m = (rows["target_tag"] == target) & (rows["selection"] == selection) & (rows["k"] == k)
    m &= rows["eval_tag"] == eval_tag
    for f, v in match.items():
        m &= rows[f] == v
    return rows["accuracy"][m]


def test_the_saved_counts_are_recorded_and_at_the_judged_k(analysed):
    _, out = analysed
    recorded = json.loads((out / "complete.json").read_text())["files"]
    assert SENTENCES in recorded and METHOD_SENTENCES in recorded
    assert judged_ks(MAX_K) == [MAX_K] and judged_ks(50) == [10] and judged_ks(0) == []
    with np.load(out / SENTENCES) as z:
        assert z["top"].dtype == np.int16 and z["top"].shape == (1, 1, 5, 30, 5) and list(z["ks"]) == [MAX_K]
    run = load_run_analysis(out)
    assert {SENTENCES, METHOD_SENTENCES} <= set(run.files)


def test_ablation_sentences_sum_to_ablation_csv_and_match_a_plain_re_decoding(analysed):
    arrays, out = analysed
    (counts,) = read_sentence_counts(out / SENTENCES).values()
    rows = read_ablation_csv(out / "ablation.csv")
    tags = [str(t) for t in arrays["tags"]]
    rankings = rank_units(sensitivity(arrays["h"], arrays["W"], arrays["pred"]))
    assert np.array_equal(counts.base, _per_sentence(arrays, []))
    assert np.array_equal(counts.gold.sum(axis=0), np.bincount(arrays["gold"], minlength=len(tags)))
    for z, target in enumerate(counts.targets):
        assert np.array_equal(counts.top[0, z], _per_sentence(arrays, rankings[tags.index(target), :MAX_K]))
        for j, t in enumerate(tags):
            n = counts.gold[:, j].sum()
            assert _acc(rows, target, "top", 0, t)[0] == counts.base[:, j].sum() / n  # exactly
            assert _acc(rows, target, "top", MAX_K, t)[0] == counts.top[0, z][:, j].sum() / n
            rnd = _acc(rows, target, "random", MAX_K, t)
            assert rnd.size == counts.draws == DRAWS
            assert rnd.mean() == pytest.approx(counts.random[0][:, j].sum() / (DRAWS * n), abs=1e-15)


def test_methods_sentences_sum_to_the_sensitivity_and_random_rows_of_methods_csv(analysed):
    arrays, out = analysed
    saved = read_sentence_counts(out / METHOD_SENTENCES)
    rows = read_methods_csv(out / "methods.csv")
    tags = [str(t) for t in arrays["tags"]]
    assert list(saved) == ["zero", "mean"]
    for ablate, counts in saved.items():
        assert counts.targets == tags and counts.draws == DRAWS
        r = rows[rows["ablate"] == ablate]
        for z, target in enumerate(counts.targets):
            for j, t in enumerate(tags):
                n = counts.gold[:, j].sum()
                own = r[r["method"] == "sensitivity"]
                assert _acc(own, target, "top", 0, t)[0] == counts.base[:, j].sum() / n
                assert _acc(own, target, "top", MAX_K, t)[0] == counts.top[0, z][:, j].sum() / n
                rnd = _acc(r[r["method"] == "random"], target, "random", MAX_K, t)
                assert rnd.mean() == pytest.approx(counts.random[0][:, j].sum() / (DRAWS * n), abs=1e-15)


def test_findings_use_the_sentence_bootstrap_when_the_counts_are_saved_and_say_so(analysed):
    _, out = analysed
    run = RunEvidence.of(load_run_analysis(out))
    assert set(run.sentences) == {"zero", "mean"}
    f9 = next(f for f in evaluate_findings([run], statistics=FAST) if f["number"] == 9 and f["ablate"] == "zero")
    cases = f9["clauses"][0]["cases"]
    assert cases and all(c["variance_methods"] == [SENTENCE_BOOTSTRAP] for c in cases)
    assert "bootstrap over the scoring split's sentences, 50 resamples for accuracy drops" in f9["method"]
    older = RunEvidence(run.tags, "older", run.corr, run.similarity, run.sweeps, run.s, run.W, run.rank_split,
                        run.score_split, {t: 40 for t in run.tags})
    f9 = next(f for f in evaluate_findings([older], statistics=FAST) if f["number"] == 9)
    assert all(c["variance_methods"] == [BINOMIAL] for c in f9["clauses"][0]["cases"])
    assert "binomial over the tag's tokens for accuracy drops" in f9["method"]
    both = evaluate_findings([run, older], statistics=FAST)
    f9 = next(f for f in both if f["number"] == 9 and f["ablate"] == "zero")
    assert {tuple(c["variance_methods"]) for c in f9["clauses"][0]["cases"]} == {(SENTENCE_BOOTSTRAP, BINOMIAL)}
    n = sum(len(c["variance_methods"]) for f in both for cl in f["clauses"] for c in cl["cases"]
            if f["number"] in (9, 10))
    assert f"(binomial over the tag's tokens in {n // 2} of {n} run cases, from analyses" in f9["method"]


def test_counts_that_do_not_belong_to_the_rows_fall_back_to_the_binomial_variance(analysed):
    _, out = analysed
    run = RunEvidence.of(load_run_analysis(out))
    rows, counts = run.sweeps["zero"], run.sentences["zero"]
    target = counts.targets[0]
    mine = rows[rows["target_tag"] == target]
    clause = RULES[9]["clause"][0]
    support = {t: 40 for t in run.tags}
    good = ablation_case(clause, mine, run.tags, target, MAX_K, RunWithin(support, counts, FAST))
    assert good["variance_method"] == SENTENCE_BOOTSTRAP
    base = counts.base.copy()
    base[:, run.tags.index(target)] = 0  # counts of another sweep: their recall at k = 0 is not the rows'
    other = dataclasses.replace(counts, base=base)
    bad = ablation_case(clause, mine, run.tags, target, MAX_K, RunWithin(support, other, FAST))
    assert bad["variance_method"] == BINOMIAL
    k3 = ablation_case(clause, mine, run.tags, target, 3, RunWithin(support, counts, FAST))  # k not saved
    assert k3["variance_method"] == BINOMIAL


def _counts(gold, base, top, random=None, draws=0):
    """SweepCounts of one target tag "A" (column 0) beside a tag "B" (column 1), at k = 1."""
    S = gold.shape[0]
    random = np.zeros((S, 2), np.int64) if random is None else random
    return SweepCounts(["A", "B"], [1], ["A"], draws, gold, base, top[None, None], random[None])


def _brute(kind, counts, resamples, seed):
    """The statistic on each resample, by a loop over the resampled sentence indices (same seed and draws)."""
    S = counts.gold.shape[0]
    idx = case_rng(seed, "sentences").integers(0, S, size=(resamples, S))
    out = []
    for b in range(resamples):
        g, b0, tk = (counts.gold[idx[b]].sum(0), counts.base[idx[b]].sum(0), counts.top[0, 0][idx[b]].sum(0))
        own = (b0[0] - tk[0]) / g[0]
        if kind == "ablation_vs_random":
            out.append(own - (b0[0] - counts.random[0][idx[b]].sum(0)[0] / counts.draws) / g[0])
        else:
            out.append(own - (b0[1] - tk[1]) / g[1])
    return np.array(out)


@pytest.mark.parametrize("kind", ["ablation_vs_random", "ablation_selectivity"])
def test_the_vectorised_bootstrap_equals_a_loop_over_resampled_sentences(kind):
    rng = np.random.default_rng(5)
    S = 40
    gold = rng.integers(1, 6, size=(S, 2))
    base = rng.binomial(gold, 0.9)
    top = rng.binomial(base, 0.6)
    random = rng.binomial(base * 7, 0.8)  # the sum of 7 draws
    counts = _counts(gold, base, top, random, draws=7)
    want = _brute(kind, counts, 300, seed=3)
    from nerve.analysis.within import sentence_weights

    got = sentence_statistics(SentenceCase(kind, 1, "A", ("B",)), counts, sentence_weights(S, 300, 3))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    drops = rng.uniform(0, 0.1, 7)
    extra = drops.var(ddof=1) / 7 if kind == "ablation_vs_random" else 0.0
    got = sentence_variance(SentenceCase(kind, 1, "A", ("B",)), counts, drops, 300, 3)
    assert got == pytest.approx(want.var(ddof=1) + extra)


def test_with_one_token_per_sentence_the_bootstrap_approaches_the_binomial_variance():
    rng = np.random.default_rng(6)
    n, d = 2000, 0.2
    gold = np.zeros((n, 2), np.int64)
    gold[:, 0] = 1
    top = gold * (rng.random((n, 1)) >= d)  # each token turned wrong with probability d, independently
    counts = _counts(gold, gold.copy(), top, gold.copy(), draws=1)  # the random draw drops nothing
    boot = sentence_variance(SentenceCase("ablation_vs_random", 1, "A"), counts, np.zeros(1), 2000, 0)
    drop = 1 - top[:, 0].mean()
    assert boot == pytest.approx(drop * (1 - drop) / n, rel=0.1)
    binomial = ablation_variance("ablation_vs_random", {"top_drop": drop}, {"A": n}, "A", np.zeros(1), {})
    assert boot == pytest.approx(binomial, rel=0.1)


def test_with_sentences_right_or_wrong_together_the_bootstrap_exceeds_the_binomial_variance():
    rng = np.random.default_rng(7)
    S, length = 300, 10
    gold = np.zeros((S, 2), np.int64)
    gold[:, 0] = length
    gold[:, 1] = 4
    top = gold.copy()
    top[rng.random(S) < 0.2, 0] = 0  # a fifth of the sentences lose every token of A at once
    counts = _counts(gold, gold.copy(), top, gold.copy(), draws=1)
    drop = 1 - top[:, 0].sum() / gold[:, 0].sum()
    support = {"A": S * length, "B": S * 4}
    for kind, ev in (("ablation_vs_random", {"top_drop": drop}), ("ablation_selectivity", {"own_drop": drop})):
        boot = sentence_variance(SentenceCase(kind, 1, "A", ("B",)), counts, np.zeros(1), 500, 0)
        binomial = ablation_variance(kind, ev, support, "A", np.zeros(1), {"B": 0.0})
        assert boot > 3 * binomial  # ~ length times: each sentence is one draw of `length` tokens
        assert boot == pytest.approx(drop * (1 - drop) / S, rel=0.25)
    assert drop_variance(drop, S * length) < drop * (1 - drop) / S / 5
