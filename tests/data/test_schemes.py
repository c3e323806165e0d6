"""Tests for nerve.data.schemes: conlleval span reading, conversions, BIO repair."""

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from nerve.data.schemes import (
    bio_errors,
    clean_bio_to_bioes,
    convert,
    detect_scheme,
    repair_bio,
    spans,
    split_tag,
)

SCHEMES = ("BIO", "IOB1", "BIOES")
TYPES = ("PER", "LOC", "ORG")
FAST = settings(max_examples=150, deadline=None)


def tag_lists(prefixes):
    """Random tag sequences (invalid orders included) over 1-3 types."""
    return st.integers(1, 3).flatmap(
        lambda k: st.lists(
            st.tuples(st.sampled_from(prefixes), st.sampled_from(TYPES[:k])).map(
                lambda pt: "O" if pt[0] == "O" else f"{pt[0]}-{pt[1]}"
            ),
            max_size=14,
        )
    )


BIO_TAGS = tag_lists("OOBI")
BIOES_TAGS = tag_lists("OOBIES")


def seqeval_spans(tags):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(t, s, e) for t, s, e in get_entities(list(tags))]


@FAST
@given(BIO_TAGS)
def test_bio_spans_match_seqeval(tags):
    assert spans(tags, "BIO") == seqeval_spans(tags)
    assert spans(tags, "IOB1") == seqeval_spans(tags)


@FAST
@given(BIOES_TAGS)
def test_bioes_spans_match_seqeval(tags):
    assert spans(tags, "BIOES") == seqeval_spans(tags)


@FAST
@given(BIOES_TAGS, st.sampled_from(SCHEMES), st.sampled_from(SCHEMES))
def test_round_trips_keep_spans(tags, mid, dst):
    src = "BIOES" if detect_scheme(tags) == "BIOES" else "BIO"
    want = spans(tags, src)
    once = convert(tags, src, mid)
    assert spans(once, mid) == want
    twice = convert(once, mid, dst)
    assert spans(twice, dst) == want
    assert convert(twice, dst, mid) == once  # canonical output is a fixed point


@FAST
@given(BIO_TAGS)
def test_repair_keeps_spans_and_fixes_errors(tags):
    fixed = repair_bio(tags)
    assert spans(fixed) == spans(tags)
    assert bio_errors(fixed) == []
    assert fixed == convert(tags, "BIO", "BIO")


@FAST
@given(BIO_TAGS)
def test_fast_bio_to_bioes_equals_convert_on_valid_bio(tags):
    valid = repair_bio(tags)
    assert clean_bio_to_bioes(valid) == convert(valid, "BIO", "BIOES")


def test_hand_examples():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG"]
    assert spans(tags) == [("PER", 0, 1), ("LOC", 3, 4), ("LOC", 5, 5), ("ORG", 6, 6)]
    assert convert(tags, "BIO", "IOB1") == ["I-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG"]
    assert convert(tags, "BIO", "BIOES") == ["B-PER", "E-PER", "O", "B-LOC", "E-LOC", "S-LOC", "S-ORG"]
    assert spans(["I-PER", "B-PER", "I-PER"], "IOB1") == [("PER", 0, 0), ("PER", 1, 2)]
    assert spans(["B-PER", "I-PER", "E-PER", "I-PER", "S-LOC", "E-LOC"], "BIOES") == [
        ("PER", 0, 2), ("PER", 3, 3), ("LOC", 4, 4), ("LOC", 5, 5)
    ]
    assert spans([]) == [] and convert([], "BIO", "BIOES") == []


def test_split_tag_and_detect():
    assert split_tag("O") == ("O", "")
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("S-MISC-X") == ("S", "MISC-X")
    assert detect_scheme(["O", "B-PER", "I-PER"]) == "BIO"
    assert detect_scheme({"O", "B-PER", "E-PER"}) == "BIOES"


def test_bio_errors_messages():
    tags = ["I-PER", "O", "I-LOC", "B-PER", "I-ORG", "I-ORG"]
    errs = bio_errors(tags)
    assert [i for i, _ in errs] == [0, 2, 4]
    assert "start" in errs[0][1] and "follows O" in errs[1][1] and "B-PER" in errs[2][1]
    assert repair_bio(tags) == ["B-PER", "O", "B-LOC", "B-PER", "B-ORG", "I-ORG"]


@pytest.mark.parametrize("bad", ["B_PER", "X-PER", "PER", "B-", "", "o"])
def test_split_tag_rejects(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        split_tag(bad)


def test_bad_scheme_and_prefix():
    with pytest.raises(ValueError, match="BIOES"):
        spans(["O"], "IOBES")
    with pytest.raises(ValueError, match="E-PER"):
        spans(["B-PER", "E-PER"], "BIO")
    with pytest.raises(ValueError, match="expected one of"):
        convert(["O"], "BIO", "IOE")
    with pytest.raises(ValueError, match="S-PER"):
        bio_errors(["S-PER"])


def test_bioes_tags_in_a_file_declared_bio_are_a_one_line_error():
    from nerve.data.conll import Sentence
    from nerve.data.schemes import check_and_convert
    from nerve.errors import NerveError

    with pytest.raises(NerveError, match=r"f:7: .*S-Y.*not BIO"):
        check_and_convert([Sentence(words=["a", "b"], tags=["B-X", "S-Y"], line=7)], "f", "BIO", "BIO")
