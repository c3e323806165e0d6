"""Pretrained vectors: text formats, exact-then-lower-case lookup, and the GloVe 6B 50d package."""

from __future__ import annotations

import gzip
import zipfile

import numpy as np
import pytest

from nerve.data.batching import Indexer
from nerve.data.conll import Sentence
from nerve.data.vocab import build_vocabs
from nerve.embeddings import GLOVE_50D, Pretrained, init_matrix, load_pretrained, unit_length
from nerve.errors import NerveError

TEXT = "the 0.1 0.2 0.3\nGermany 1 2 3\ngermany 4 5 6\nthe 9 9 9\n"


def _words_and_vectors():
    words = ["the", "Germany", "germany", "the", "paris"]
    return words, np.arange(15, dtype=np.float32).reshape(5, 3)


@pytest.mark.parametrize("suffix", [".txt", ".gz", ".zip"])
def test_text_formats_load_with_dimension_inferred(tmp_path, suffix):
    path = tmp_path / f"emb{suffix}"
    if suffix == ".gz":
        path.write_bytes(gzip.compress(TEXT.encode()))
    elif suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("vectors.txt", TEXT)
    else:
        path.write_text(TEXT)
    table = load_pretrained(str(path))
    assert table.dim == 3
    np.testing.assert_allclose(table.vectors[table.row("Germany")], [1, 2, 3])


def test_word2vec_header_is_skipped(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_text("2 3\n" + "a 1 2 3\nb 4 5 6\n")
    table = load_pretrained(str(path))
    assert (len(table.vectors), table.dim) == (2, 3)


def test_ragged_vector_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a 1 2 3\nb 4 5\n")
    with pytest.raises(NerveError, match=r"bad\.txt:2: .*2 values; expected 3"):
        load_pretrained(str(path))


def test_exact_match_first_then_lower_case_and_first_occurrence_wins():
    table = Pretrained(*_words_and_vectors(), source="t")
    assert [table.row(w) for w in ["the", "Germany", "GERMANY", "Paris", "nope"]] == [0, 1, 2, 4, None]


def test_without_lowercase_fallback_only_exact_matches_count():
    table = Pretrained(*_words_and_vectors(), source="t", lowercase_fallback=False)
    assert [table.row(w) for w in ["Germany", "Paris"]] == [1, None]


def test_init_matrix_uses_pretrained_rows_and_zero_padding():
    words, vectors = _words_and_vectors()
    matrix, found = init_matrix(["<pad>", "<unk>", "Paris", "zzz"], 3, Pretrained(words, vectors, "t"),
                                np.random.default_rng(0))
    assert found == 1
    np.testing.assert_array_equal(matrix[2], vectors[4])
    assert not matrix[0].any() and matrix[3].any()


def test_init_matrix_normalize_scales_pretrained_rows_to_unit_length_only():
    words, vectors = _words_and_vectors()
    table = Pretrained(words, vectors, "t")
    plain, _ = init_matrix(["<pad>", "<unk>", "Paris", "zzz"], 3, table, np.random.default_rng(0))
    unit, found = init_matrix(["<pad>", "<unk>", "Paris", "zzz"], 3, table, np.random.default_rng(0), normalize=True)
    assert found == 1
    np.testing.assert_allclose(unit[2], vectors[4] / np.linalg.norm(vectors[4]), rtol=1e-6)
    np.testing.assert_array_equal(unit[[0, 1, 3]], plain[[0, 1, 3]])  # padding and random rows are not scaled


def test_unit_length_keeps_all_zero_rows_zero():
    out = unit_length(np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_encoder_extra_vectors_follow_normalize():
    words, vectors = _words_and_vectors()
    vocabs = build_vocabs([["the"]], [["O"]], [])
    enc = Indexer(vocabs, [], False, Pretrained(words, vectors, "t"), chars=False, normalize=True)
    enc.encode(Sentence(["the", "Paris"]), labelled=False, allow_extra=True)
    np.testing.assert_allclose(enc.extra_vectors(), [vectors[4] / np.linalg.norm(vectors[4])], rtol=1e-6)


def test_glove_6b_50d_package_loads_with_case_fallback():
    table = load_pretrained(GLOVE_50D)
    assert (len(table.vectors), table.dim) == (400_000, 50)
    assert [table.row(w) for w in ["Germany", "germany", "qzxqzxqzx"]] == [table.row("germany")] * 2 + [None]
    found, vecs = table.lookup(["the"])
    np.testing.assert_array_equal(vecs[0], np.asarray(table.vectors[table.row("the")], dtype=np.float32))


def test_a_byte_order_mark_does_not_hide_the_first_word(tmp_path):
    from nerve.embeddings import _load_text

    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfeu 1 2 3\npeter 4 5 6\n")
    table = _load_text(p, lowercase_fallback=False)
    assert table.row("eu") == 0 and table.row("peter") == 1
