"""nerve.tags: parsing, types, one order everywhere, and legal transitions checked against the scheme rules."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nerve import tags as T


def test_tag_order_groups_types_b_before_i_and_o_last():
    tags = ["O", "I-PER", "B-LOC", "I-LOC", "B-PER", "S-LOC", "E-LOC"]
    assert [tags[i] for i in T.tag_order(tags)] == ["B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "O"]


def test_strings_that_are_not_tags_sort_after_typed_tags_and_before_o():
    tags = ["O", "<pad>", "B-PER", "ALL"]
    assert [tags[i] for i in T.tag_order(tags)] == ["B-PER", "<pad>", "ALL", "O"]


@given(st.lists(st.sampled_from(["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "B-MISC-X"]),
                max_size=12))
def test_sort_key_orders_valid_tags_by_type_then_bies_then_o(tags):
    ordered = sorted(set(tags), key=T.sort_key)
    # the order training has always used for tag ids: (type, B<I<E<S), O last
    ref = sorted(set(tags), key=lambda t: (1, "", 0) if t == "O" else (0, t[2:], "BIES".index(t[0])))
    assert ordered == ref


@pytest.mark.parametrize("bad", ["B_PER", "X-PER", "PER", "B-", "", "o"])
def test_split_tag_rejects_what_is_not_o_or_prefix_dash_type(bad):
    with pytest.raises(ValueError):
        T.split_tag(bad)
    assert T.split_or_outside(bad) == ("O", "") and T.entity_type(bad) is None and not T.is_tag(bad)


def test_entity_types_of_a_tag_set():
    assert T.entity_types(["O", "B-PER", "I-PER", "S-LOC", "junk"]) == ["LOC", "PER"]


def _legal_bio(seq):
    prev = "O"
    for t in seq:
        if t.startswith("I-") and not (prev != "O" and prev[2:] == t[2:]):
            return False
        prev = t
    return True


def _legal_bioes(seq):
    prev = "O"
    for t in seq:
        inside = prev[0] in "BI"
        if inside != (t[0] in "IE") or (inside and prev[2:] != t[2:]):
            return False
        prev = t
    return prev[0] in "OES"


@pytest.mark.parametrize("scheme, tags, legal", [
    ("BIO", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], _legal_bio),
    ("BIOES", ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"], _legal_bioes)])
def test_allowed_transitions_accept_exactly_the_legal_sequences(scheme, tags, legal):
    allowed, start, end = T.allowed_transitions(tags, scheme)
    for n in (1, 2, 3):
        for seq in itertools.product(range(len(tags)), repeat=n):
            ok = start[seq[0]] and end[seq[-1]] and all(allowed[a, b] for a, b in zip(seq, seq[1:]))
            assert bool(ok) == legal([tags[i] for i in seq]), [tags[i] for i in seq]


def test_tags_the_scheme_does_not_know_are_unconstrained():
    allowed, start, end = T.allowed_transitions(["O", "B-PER", "I-PER", "<pad>"], "BIO")
    assert allowed[3].all() and allowed[:, 3].all() and start[3] and end[3]
    assert isinstance(allowed, np.ndarray)
