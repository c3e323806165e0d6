"""Translation (Antverg & Belinkov 2022): each row's counts equal a full model re-run with the source tokens' units
set to the target's mean by a plain forward hook (softmax and CRF), k = 0 is the model's own prediction, the draws
are seeded, and a linear model whose answer is known translates as it must."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.analysis.ablation import random_orders
from nerve.analysis.checks import Activations, AnalysisInputError, check_activations
from nerve.analysis.heldout import RANDOM, method_rankings, rank_input
from nerve.analysis.methods import RankInput
from nerve.analysis.translation import (
    FIELDS,
    JUDGED_FIELDS,
    TranslationSpec,
    judge_translation,
    read_translation_csv,
    translation_csv,
    translation_summary_csv,
    translation_sweep,
)
from nerve.run import load_run
from tests.analysis.analysis_synthetic import make_arrays, viterbi_loop
from tests.analysis.rerun import rerun_preds, split_activations


def _mover(tokens, values, units):
    """edit(offset, rows): on the rows of ``tokens`` (bool over the split), units := values[units] (float32)."""
    units = np.asarray(units, dtype=np.intp)

    def edit(at, rows):
        on = np.flatnonzero(tokens[at:at + len(rows)])
        rows[np.ix_(on, units)] = np.asarray(values, np.float32)[units]
        return rows

    return edit


@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_every_translation_row_counts_what_a_model_rerun_with_source_tokens_units_hooked_to_the_target_mean_predicts(
        which, tiny_run, crf_run):
    run = load_run(tiny_run if which == "softmax" else crf_run)
    _, dev = split_activations(run, "dev")
    sents, test = split_activations(run, "test")
    rank = rank_input(dev)
    n, tags = dev.h.shape[1], list(test.tags)
    rankings = method_rankings(rank, ["sensitivity"])
    pairs = (("B-PER", "B-LOC"), ("O", "B-ORG"))
    spec = TranslationSpec(max_k=n, random_draws=1, seed=5, pairs=pairs)
    rows = translation_sweep(rank, test, rankings, spec)
    rand = random_orders(n, 1, 5)
    cache, moved = {}, 0
    for r in rows:
        z, t, k = tags.index(r["source_tag"]), tags.index(r["target_tag"]), int(r["k"])
        units = rand[r["draw"]][:k] if r["method"] == RANDOM else rankings["sensitivity"][z, :k]
        key = (z, t, tuple(sorted(units)))
        if key not in cache:
            mean = dev.h[rank.labels == t].astype(np.float64).mean(axis=0)
            cache[key] = rerun_preds(run, sents, run.cfg.data.test, _mover(test.gold == z, mean, units))
        on = cache[key][test.gold == z]
        assert (r["n_tokens"], r["n_to_target"], r["n_stay"]) == (on.size, np.sum(on == t), np.sum(on == z)), r
        moved += int(r["n_to_target"] > 0)
    assert len(cache) > 2 * n and moved > 0  # many unit sets re-run, and some tokens did translate


def _direct(arrays, z, t, units, value, shift=False):
    """Predictions of the split after moving ``units`` of the gold-z tokens, recomputed from scratch (float64,
    argmax or a plain per-sentence Viterbi)."""
    h = arrays["h"].astype(np.float64)
    on = np.flatnonzero(arrays["gold"] == z)
    units = list(units)
    h[np.ix_(on, units)] = h[np.ix_(on, units)] + value[units] if shift else value[units]
    logits = h @ arrays["W"].astype(np.float64).T + arrays["b"].astype(np.float64)
    if arrays["decoder"] != "crf":
        return logits.argmax(axis=1)
    crf = [arrays[k].astype(np.float64) for k in ("crf_start", "crf_transitions", "crf_end")]
    cuts = [*arrays["sentence_starts"], len(h)]
    return np.concatenate([viterbi_loop(logits[a:b], *crf) for a, b in zip(cuts[:-1], cuts[1:])])


@pytest.mark.parametrize("decoder", ["softmax", "crf"])
@pytest.mark.parametrize("mode", ["set", "shift"])
def test_every_pair_and_mode_counts_what_a_direct_recomputation_of_the_edited_split_predicts(decoder, mode):
    arrays = make_arrays(n_tokens=150, n=6, n_sentences=14, seed=4, decoder=decoder)
    acts = check_activations(arrays)
    ranks = make_arrays(n_tokens=120, n=6, seed=9)
    rank = RankInput(ranks["h"], ranks["gold"], ranks["W"], 5)
    rankings = method_rankings(rank, ["probeless"])
    rows = translation_sweep(rank, acts, rankings, TranslationSpec(max_k=6, random_draws=2, seed=1, mode=mode))
    rand = random_orders(6, 2, 1)
    means = [ranks["h"][ranks["gold"] == j].astype(np.float64).mean(axis=0) for j in range(5)]
    tags = list(acts.tags)
    assert len(rows) == 20 * 3 * 7  # 5 * 4 pairs, (1 method + 2 draws) * 7 ks
    for r in rows:
        z, t, k = tags.index(r["source_tag"]), tags.index(r["target_tag"]), int(r["k"])
        units = rand[r["draw"]][:k] if r["method"] == RANDOM else rankings["probeless"][z, :k]
        value = means[t] - means[z] if mode == "shift" else means[t]
        on = _direct(arrays, z, t, units, value, mode == "shift")[acts.gold == z]
        assert (r["n_tokens"], r["n_to_target"], r["n_stay"]) == (on.size, np.sum(on == t), np.sum(on == z)), r
        np.testing.assert_allclose([r["rate_to_target"], r["rate_stay"]], [np.mean(on == t), np.mean(on == z)])


@pytest.mark.parametrize("tokens", ["gold", "predicted"])
def test_k0_rows_count_the_models_own_predictions_on_the_source_tokens(tiny_run, tokens):
    run = load_run(tiny_run)
    _, dev = split_activations(run, "dev")
    _, test = split_activations(run, "test")
    rows = translation_sweep(rank_input(dev), test, method_rankings(rank_input(dev), ["sensitivity"]),
                             TranslationSpec(max_k=2, random_draws=3, seed=2, tokens=tokens))
    tags = list(test.tags)
    picked = test.gold if tokens == "gold" else test.pred
    zero = rows[rows["k"] == 0]
    assert len(zero) == len(rows) // 3 and len(zero) > 50
    for r in zero:
        z, t = tags.index(r["source_tag"]), tags.index(r["target_tag"])
        on = test.pred[picked == z]
        assert (r["n_tokens"], r["n_to_target"], r["n_stay"]) == (on.size, np.sum(on == t), np.sum(on == z))
    if tokens == "predicted":
        assert np.all(zero["rate_stay"] == 1.0)


def test_random_draws_are_reproducible_by_seed_and_change_with_it():
    acts = check_activations(make_arrays(n=8, seed=2))
    rank = rank_input(acts, "gold")
    sweep = lambda seed: translation_sweep(rank, acts, {}, TranslationSpec(max_k=8, random_draws=5, seed=seed))
    a, b, c = sweep(3), sweep(3), sweep(4)
    assert set(a["method"]) == {RANDOM} and set(a["draw"]) == set(range(5))
    assert translation_csv(a) == translation_csv(b)
    assert not np.array_equal(a["n_to_target"], c["n_to_target"])


def _linear():
    """A linear softmax "model" with tags A, B, O on 3 units: unit 0 alone decides A (+1) against B (−1); units 1
    and 2 are noise with zero weight; O wins at unit 0 = 0 (bias)."""
    rng = np.random.default_rng(0)
    gold = np.repeat([0, 1, 2], 10)
    h = np.c_[np.select([gold == 0, gold == 1], [1.0, -1.0], 0.0), rng.normal(size=(30, 2))]
    W, b = np.array([[2.0, 0, 0], [-2.0, 0, 0], [0, 0, 0]]), np.array([0.0, 0.0, 0.5])
    acts = Activations(h, gold, gold, ["A", "B", "O"], W, b, ["u0", "u1", "u2"], np.arange(0, 30, 5), "softmax", None)
    return RankInput(h, gold, W, 3, b), acts


def test_moving_the_one_decisive_unit_translates_every_source_token_and_a_ranking_without_it_only_at_the_end():
    rank, acts = _linear()
    good, bad = np.tile([0, 1, 2], (3, 1)), np.tile([1, 2, 0], (3, 1))
    rows = translation_sweep(rank, acts, {"good": good, "bad": bad},
                             TranslationSpec(max_k=3, random_draws=0, pairs=(("A", "B"), ("A", "O"))))
    curve = lambda m, t: rows[(rows["method"] == m) & (rows["target_tag"] == t)]
    np.testing.assert_array_equal(curve("good", "B")["rate_to_target"], [0, 1, 1, 1])
    np.testing.assert_array_equal(curve("good", "B")["rate_stay"], [1, 0, 0, 0])
    np.testing.assert_array_equal(curve("bad", "B")["rate_to_target"], [0, 0, 0, 1])
    np.testing.assert_array_equal(curve("good", "O")["rate_to_target"], [0, 1, 1, 1])  # unit 0 to O's mean 0
    assert set(curve("good", "B")["n_tokens"]) == {10}


def test_judging_gives_the_success_rate_the_draws_mean_and_the_empirical_p():
    rank, acts = _linear()
    rows = translation_sweep(rank, acts, {"good": np.tile([0, 1, 2], (3, 1))},
                             TranslationSpec(max_k=3, random_draws=30, seed=7, pairs=(("A", "B"),)))
    judged = judge_translation(rows)
    assert [j["k"] for j in judged] == [0, 1, 2, 3] and set(judged[0]) == set(JUDGED_FIELDS)
    first = random_orders(3, 30, 7)[:, 0] == 0  # the draws whose first unit is the decisive one
    at1 = judged[1]
    assert at1["rate_to_target"] == 1.0 and at1["n_draws"] == 30
    assert at1["random_mean"] == pytest.approx(first.mean())
    assert at1["random_p"] == pytest.approx((1 + first.sum()) / 31)
    assert judged[0]["random_p"] == 1.0 and judged[3]["random_mean"] == 1.0  # k = 0 and k = n: every draw alike
    text = translation_summary_csv(judged)
    assert text.splitlines()[0] == ",".join(JUDGED_FIELDS) and len(text.splitlines()) == 5


def test_a_crf_without_transition_scores_translates_as_the_softmax():
    arrays = make_arrays(n=6, seed=5, decoder="crf")
    for key in ("crf_start", "crf_transitions", "crf_end"):
        arrays[key] = np.zeros_like(arrays[key])
    crf = check_activations(arrays)
    soft = check_activations({**arrays, "decoder": np.array("softmax")})
    rank = rank_input(soft, "gold")
    rankings = method_rankings(rank, ["sensitivity"])
    spec = TranslationSpec(max_k=6, random_draws=2, seed=0)
    assert translation_csv(translation_sweep(rank, crf, rankings, spec)) == translation_csv(
        translation_sweep(rank, soft, rankings, spec))


def test_default_pairs_are_every_ordered_pair_of_tags_with_tokens_in_both_splits():
    arrays = make_arrays(n=4, seed=1)
    acts = check_activations(arrays)
    gold = np.where(acts.gold == 0, 4, acts.gold)  # no B-LOC in the ranking split
    rank = RankInput(acts.h, gold, acts.W, 5)
    rows = translation_sweep(rank, acts, {}, TranslationSpec(max_k=1, random_draws=1))
    pairs = sorted({(s, t) for s, t in zip(rows["source_tag"].tolist(), rows["target_tag"].tolist())})
    rest = ["B-PER", "I-LOC", "I-PER", "O"]
    assert pairs == sorted((s, t) for s in rest for t in rest if s != t)


def test_csv_writes_a_header_and_one_line_per_row_and_reads_back(tmp_path):
    rank, acts = _linear()
    rows = translation_sweep(rank, acts, {"good": np.tile([0, 1, 2], (3, 1))}, TranslationSpec(max_k=2, random_draws=2))
    text = translation_csv(rows)
    assert text.splitlines()[0] == ",".join(FIELDS) and len(text.splitlines()) == len(rows) + 1
    (tmp_path / "translation.csv").write_text(text)
    back = read_translation_csv(tmp_path / "translation.csv")
    assert translation_csv(back) == text


@pytest.mark.parametrize("spec, rankings, message", [
    (TranslationSpec(max_k=1, pairs=(("A", "X"),)), {}, "unknown tag 'X'"),
    (TranslationSpec(max_k=4), {}, "max_k"),
    (TranslationSpec(max_k=1), {RANDOM: np.tile([0, 1, 2], (3, 1))}, "random draws"),
    (TranslationSpec(max_k=1), {"m": np.tile([0, 0, 2], (3, 1))}, "permutation"),
])
def test_bad_pairs_k_or_rankings_are_one_line_errors(spec, rankings, message):
    rank, acts = _linear()
    with pytest.raises(AnalysisInputError, match=message):
        translation_sweep(rank, acts, rankings, spec)


def test_a_pair_whose_tag_has_no_token_in_the_ranking_split_is_a_one_line_error():
    rank, acts = _linear()
    rank = RankInput(rank.h, np.where(rank.labels == 2, 0, rank.labels), rank.W, 3)
    with pytest.raises(AnalysisInputError, match="O has no token in the ranking split"):
        translation_sweep(rank, acts, {}, TranslationSpec(max_k=1, pairs=(("A", "O"),)))


@pytest.mark.parametrize("kw, message", [({"tokens": "both"}, "tokens"), ({"mode": "add"}, "mode"),
                                         ({"pairs": (("A", "A"),)}, "pairs"), ({"random_draws": -1}, "random_draws")])
def test_bad_spec_options_are_one_line_errors(kw, message):
    with pytest.raises(AnalysisInputError, match=message):
        TranslationSpec(max_k=1, **kw)


def test_an_exact_tie_after_the_move_goes_to_the_first_tag_as_a_plain_argmax_of_the_recomputed_logits():
    rng = np.random.default_rng(3)
    gold = np.repeat([0, 1], 40)
    h = np.c_[np.where(gold == 0, 1.0, 0.0), rng.normal(size=80)]  # A's tokens: unit 0 = 1; B's mean of unit 0: 0
    W, b = np.array([[1.0, 0.1], [0.0, 0.1]]), np.zeros(2)  # with unit 0 at 0, A and B tie exactly: 0.1 h1 each
    acts = Activations(h, gold, gold, ["A", "B"], W, b, ["u0", "u1"], np.arange(0, 80, 8), "softmax", None)
    rows = translation_sweep(RankInput(h, gold, W, 2, b), acts, {"m": np.array([[0, 1], [0, 1]])},
                             TranslationSpec(max_k=1, random_draws=0, pairs=(("A", "B"),)))
    np.testing.assert_array_equal(rows["n_stay"], [40, 40])  # the first max: A
    np.testing.assert_array_equal(rows["n_to_target"], [0, 0])


def test_a_source_without_tokens_in_the_scoring_split_counts_none_and_has_nan_rates_and_no_p():
    rank, acts = _linear()
    scored = Activations(acts.h[10:], acts.gold[10:], acts.pred[10:], acts.tags, acts.W, acts.b, acts.neurons,
                         np.arange(0, 20, 5), "softmax", None)  # no A token left to edit
    rows = translation_sweep(rank, scored, {"good": np.tile([0, 1, 2], (3, 1))},
                             TranslationSpec(max_k=1, random_draws=2, pairs=(("A", "B"),)))
    assert set(rows["n_tokens"]) == {0} and set(rows["n_to_target"]) == {0}
    assert np.all(np.isnan(rows["rate_to_target"])) and np.all(np.isnan(rows["rate_stay"]))
    assert [j["random_p"] for j in judge_translation(rows)] == [None, None]
