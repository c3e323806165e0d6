"""Tests for nerve.metrics against seqeval's default (conlleval) mode."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from nerve.metrics import ChunkScorer, entity_scores, per_tag_accuracy, token_accuracy

TYPES = ("PER", "LOC", "ORG")
BIO = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]
BIOES = BIO + [f"{p}-{t}" for t in TYPES for p in "ES"]
FAST = settings(max_examples=100, deadline=None)


@st.composite
def corpora(draw, tag_sets=(BIO, BIOES)):
    """(tag names, gold, pred): sentences of random tag ids (invalid orders included)."""
    tags = draw(st.sampled_from(tag_sets))
    ids = st.integers(0, len(tags) - 1)
    lengths = draw(st.lists(st.integers(0, 8), min_size=1, max_size=6))
    gold = [draw(st.lists(ids, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(ids, min_size=n, max_size=n)) for n in lengths]
    return tags, gold, pred


def names(tags, sents):
    return [[tags[i] for i in s] for s in sents]


def seqeval_scores(gold, pred):
    kw = {"zero_division": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # seqeval averages over no types
        report = classification_report(gold, pred, output_dict=True, **kw)
    per_type = {
        t: {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": r["support"]}
        for t, r in report.items()
        if not t.endswith(" avg")
    }
    prf = precision_score(gold, pred, **kw), recall_score(gold, pred, **kw), f1_score(gold, pred, **kw)
    return (*prf, per_type)


def flat(tags, gold):
    """Concatenated ids and sentence starts for ChunkScorer."""
    starts = np.cumsum([0] + [len(s) for s in gold[:-1]])
    ids = np.array([i for s in gold for i in s], dtype=np.int64)
    return ids, starts


@FAST
@given(corpora())
def test_entity_scores_match_seqeval(corpus):
    tags, gold_ids, pred_ids = corpus
    gold, pred = names(tags, gold_ids), names(tags, pred_ids)
    ours = entity_scores(gold, pred)
    p, r, f, per_type = seqeval_scores(gold, pred)
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx((p, r, f))
    assert ours["per_type"].keys() == per_type.keys()
    for t, row in per_type.items():
        assert ours["per_type"][t] == pytest.approx(row)


@FAST
@given(corpora((BIO, BIOES, ["<pad>"] + BIO)))
def test_chunk_scorer_matches_entity_scores(corpus):
    tags, gold_ids, pred_ids = corpus
    gold, starts = flat(tags, gold_ids)
    pred, _ = flat(tags, pred_ids)
    scorer = ChunkScorer(tags, gold, starts)
    want = entity_scores(names(tags, gold_ids), names(tags, pred_ids))
    assert scorer.prf(pred) == pytest.approx((want["precision"], want["recall"], want["f1"]))
    n_gold = sum(row["support"] for row in want["per_type"].values())
    assert scorer.counts(pred)[2] == n_gold


@settings(max_examples=40, deadline=None)
@given(corpora(), st.integers(0, 2**32 - 1))
def test_counts_many_equals_loop(corpus, seed):
    tags, gold_ids, _ = corpus
    gold, starts = flat(tags, gold_ids)
    preds = np.random.default_rng(seed).integers(0, len(tags), (7, gold.size))
    scorer = ChunkScorer(tags, gold, starts)
    many = scorer.counts_many(preds)
    assert many.shape == (7, 3)
    assert many.tolist() == [list(scorer.counts(p)) for p in preds]
    assert scorer.counts_many(preds[:0]).shape == (0, 3)


def test_chunk_scorer_hand_example():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "<pad>"]
    # sentences: [B-PER I-PER | I-PER] [O B-LOC] ; the 1-token sentence starts with I-PER
    gold = np.array([1, 2, 2, 0, 3])
    starts = np.array([0, 2, 3])
    scorer = ChunkScorer(tags, gold, starts)
    assert scorer.counts(gold) == (3, 3, 3)
    pred = np.array([1, 2, 5, 0, 4])  # padding counts as O; I-LOC after O starts a LOC chunk
    assert scorer.counts(pred) == (2, 2, 3)
    assert scorer.prf(pred) == pytest.approx((1.0, 2 / 3, 0.8))
    merged = ChunkScorer(tags, gold, np.array([0]))  # one sentence: B-PER I-PER I-PER is one chunk
    assert merged.counts(gold) == (2, 2, 2)


def test_chunk_scorer_bioes_long_chunks():
    tags = ["O", "B-X", "I-X", "E-X", "S-X"]
    gold = np.array([1, 2, 2, 3, 4, 1, 3])
    scorer = ChunkScorer(tags, gold, np.array([0]))
    assert scorer.counts(gold) == (3, 3, 3)
    assert scorer.counts(np.array([1, 2, 3, 3, 4, 1, 3])) == (2, 4, 3)  # E ends early, E E splits
    assert scorer.counts(np.array([1, 2, 2, 2, 2, 1, 3])) == (1, 2, 3)  # runs on over the S
    assert ChunkScorer(tags, gold[:0], np.array([], int)).prf(gold[:0]) == (0.0, 0.0, 0.0)


def test_chunk_scorer_rejects_bad_input():
    tags = ["O", "B-PER", "I-PER"]
    scorer = ChunkScorer(tags, np.array([0, 1, 2]), np.array([0]))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        scorer.counts(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        scorer.counts(np.array([0, 3, 0]))
    with pytest.raises(ValueError, match="int"):
        scorer.counts(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(m, 3\)"):
        scorer.counts_many(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="sentence_starts"):
        ChunkScorer(tags, np.array([0, 1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="gold"):
        ChunkScorer(tags, np.array([[0, 1, 2]]), np.array([0]))


def test_entity_scores_hand_example():
    gold = [["O", "B-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["B-MISC", "I-MISC", "I-MISC", "O"], ["I-PER", "I-PER", "B-LOC"]]
    out = entity_scores(gold, pred)
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((1 / 3, 1 / 2, 0.4))
    assert out["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert out["per_type"]["PER"]["support"] == 1
    assert entity_scores([], []) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "per_type": {}}


def test_length_mismatch_names_sentence():
    gold = [["O"], ["B-PER", "O"]]
    with pytest.raises(ValueError, match="sentence 1"):
        entity_scores(gold, [["O"], ["B-PER"]])
    with pytest.raises(ValueError, match="sentence 1"):
        token_accuracy(gold, [["O"], ["O"]])
    with pytest.raises(ValueError, match="sentences"):
        per_tag_accuracy(gold, [["O"]])


def test_token_and_per_tag_accuracy():
    gold = [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    pred = [["B-PER", "O", "O"], ["B-LOC", "B-LOC"]]
    assert token_accuracy(gold, pred) == pytest.approx(3 / 5)
    assert per_tag_accuracy(gold, pred) == {"B-LOC": 1.0, "B-PER": 1.0, "I-PER": 0.0, "O": 0.5}
    acc = per_tag_accuracy(gold, pred, tags=["O", "B-MISC"])
    assert list(acc) == ["O", "B-MISC"] and acc["O"] == 0.5 and math.isnan(acc["B-MISC"])
    assert token_accuracy([], []) == 0.0
