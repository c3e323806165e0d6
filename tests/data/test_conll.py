"""CoNLL reader: columns, DOCSTART, sentence breaks, encodings, and clear errors."""

from __future__ import annotations

import pytest

from nerve.data.conll import looks_like_conll, normalize_number, read_conll, read_text
from nerve.errors import NerveError


def write(tmp_path, text: str | bytes, name="c.txt"):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def test_reads_words_tags_and_drops_docstart(tmp_path):
    p = write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n")
    sents = read_conll(p)
    assert [s.words for s in sents] == [["EU", "rejects"], ["Peter"]]
    assert [s.tags for s in sents] == [["B-ORG", "O"], ["B-PER"]]
    assert sents[0].line == 3 and sents[0].columns[0] == ["EU", "NNP", "B-NP", "B-ORG"]


def test_tabs_crlf_and_bom_are_read(tmp_path):
    p = write(tmp_path, b"\xef\xbb\xbfEU\tB-ORG\r\nsaid O\r\n\r\n")
    assert read_conll(p)[0].words == ["EU", "said"]


def test_wrong_column_count_names_file_and_line(tmp_path):
    p = write(tmp_path, "a NN O\nb NN\n")
    with pytest.raises(NerveError, match=r"c.txt:2: found 2 columns; expected 3"):
        read_conll(p)


def test_invalid_utf8_names_the_line(tmp_path):
    p = write(tmp_path, b"a O\n\nb\xff O\n")
    with pytest.raises(NerveError, match=r"c.txt:3: invalid UTF-8"):
        read_conll(p)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(NerveError, match="no such file"):
        read_conll(tmp_path / "nope.txt")


def test_plain_text_keeps_empty_lines_as_empty_sentences(tmp_path):
    p = write(tmp_path, "EU rejects it\n\n  \nPeter\n")
    assert [s.words for s in read_text(p)] == [["EU", "rejects", "it"], [], [], ["Peter"]]


def test_format_detection(tmp_path):
    assert looks_like_conll(write(tmp_path, "EU B-ORG\nsaid O\n", "a.txt"))
    assert not looks_like_conll(write(tmp_path, "EU rejects German call\n", "b.txt"))


def test_number_normalisation_maps_digits_to_zero():
    assert normalize_number("1996-08-22") == "0000-00-00"
