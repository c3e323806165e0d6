"""Corpus tools: statistics, scheme and column conversion, validation, and the `nerve data` commands."""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path

import pytest

from nerve.data.cli import add_data_parser, cmd_data
from nerve.data.conll import read_conll
from nerve.data.registry import CORPORA
from nerve.data.schemes import spans
from nerve.data.stats import corpus_stats, format_stats, percentile_lengths
from nerve.data.tools import Problem, convert_file, validate_corpus
from nerve.errors import NerveError

SENTENCES = {"conll2003": (14041, 3250, 3453), "mit_movie": (6077, 1739, 1953),
             "nlpba2004": (14518, 4029, 3856), "wnut17": (3394, 1009, 1287)}


@cache
def real_stats(root: Path, name: str) -> dict:
    return corpus_stats(root / name)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def data(*argv: str) -> int:
    ap = argparse.ArgumentParser()
    add_data_parser(ap.add_subparsers(dest="command"))
    return cmd_data(ap.parse_args(["data", *map(str, argv)]))


class FakeVectors:
    """An embedding table with ``row``: exact then lower-case lookup, like nerve.embeddings.Pretrained."""

    def __init__(self, words):
        self.index = {w: i for i, w in enumerate(words)}
        self.source = "fake"

    def row(self, word):
        return self.index.get(word, self.index.get(word.lower()))


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("name", SENTENCES)
def test_stats_print_the_readme_sentence_counts(shared_data, name):
    row = next(r for r in format_stats(real_stats(shared_data, name)).splitlines() if r.startswith("sentences"))
    assert row.split()[1:] == [f"{n:,}" for n in SENTENCES[name]]


def test_stats_conll2003_tokens_and_documents_match_the_readme(shared_data):
    splits = real_stats(shared_data, "conll2003")["splits"]
    assert [s["tokens"] for s in splits.values()] == [203621, 51362, 46435]
    assert [s["documents"] for s in splits.values()] == [946, 216, 231]


@pytest.mark.parametrize("name", SENTENCES)
def test_stats_entity_types_match_the_registry(shared_data, name):
    for split in real_stats(shared_data, name)["splits"].values():
        assert set(split["entities"]) == set(CORPORA[name].types)


def test_stats_count_entities_tags_and_lengths(tmp_path):
    write(tmp_path / "train.txt", "-DOCSTART- O\n\nEU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlack I-PER\n")
    split = corpus_stats(tmp_path)["splits"]["train"]
    assert (split["sentences"], split["tokens"], split["documents"]) == (2, 5, 1)
    assert split["entities"] == {"MISC": 1, "ORG": 1, "PER": 1} and split["entities_total"] == 3
    assert split["tags"] == {"O": 1, "B-MISC": 1, "B-ORG": 1, "B-PER": 1, "I-PER": 1}
    assert split["length"] == {"p50": 2, "p90": 3, "p99": 3, "max": 3}


def test_stats_read_entities_by_conlleval_rules(tmp_path):
    write(tmp_path / "test.txt", "a I-PER\nb I-PER\nc O\nd I-LOC\ne B-LOC\n")
    assert corpus_stats(tmp_path)["splits"]["test"]["entities"] == {"LOC": 2, "PER": 1}


def test_stats_coverage_counts_tokens_and_types_without_digit_normalisation(tmp_path):
    write(tmp_path / "valid.txt", "The O\nthe O\nEU B-ORG\n1999 O\nthe O\n")
    cov = corpus_stats(tmp_path, FakeVectors(["the", "eu", "0000"]))["splits"]["valid"]["coverage"]
    assert (cov["tokens_found"], cov["types_found"], cov["types_total"]) == (4, 3, 4)
    assert cov["tokens"] == pytest.approx(0.8) and cov["types"] == pytest.approx(0.75)


def test_stats_table_shows_coverage_rows(tmp_path):
    write(tmp_path / "train.txt", "EU B-ORG\n")
    text = format_stats(corpus_stats(tmp_path, FakeVectors(["eu"])))
    assert "in embeddings (tokens)  100.0%" in text and "coverage by fake" in text


def test_percentiles_are_nearest_rank():
    assert percentile_lengths(list(range(1, 101))) == {"p50": 50, "p90": 90, "p99": 99, "max": 100}
    assert percentile_lengths([]) == {"p50": 0, "p90": 0, "p99": 0, "max": 0}


def test_stats_invalid_tag_names_file_and_line(tmp_path):
    write(tmp_path / "train.txt", "a O\n\nb O\nc B_PER\n")
    with pytest.raises(NerveError, match=r"train.txt:4: tag 'B_PER'"):
        corpus_stats(tmp_path)


def test_stats_folder_without_splits_is_an_error(tmp_path):
    with pytest.raises(NerveError, match="no split files"):
        corpus_stats(tmp_path)


# ---------------------------------------------------------------- conversion


@pytest.mark.parametrize("name", SENTENCES)
def test_bio_bioes_iob1_round_trip_keeps_every_span(shared_data, tmp_path, name):
    for split in ("train", "valid", "test"):
        orig = shared_data / name / f"{split}.txt"
        convert_file(orig, tmp_path / "bioes", "bioes")
        convert_file(tmp_path / "bioes", tmp_path / "iob1", "iob1", src="bioes")
        convert_file(tmp_path / "iob1", tmp_path / "bio", "bio", src="iob1")
        assert (tmp_path / "bio").read_bytes() == orig.read_bytes()  # canonical BIO: spans kept at every step
    want = [spans(s.tags) for s in read_conll(orig)]
    assert [spans(s.tags, "BIOES") for s in read_conll(tmp_path / "bioes")] == want
    assert [spans(s.tags, "IOB1") for s in read_conll(tmp_path / "iob1")] == want


def test_reverse_round_trip_bio_iob1_bioes_bio_on_wnut17(shared_data, tmp_path):
    orig = shared_data / "wnut17" / "test.txt"
    convert_file(orig, tmp_path / "iob1", "iob1")
    convert_file(tmp_path / "iob1", tmp_path / "bioes", "bioes", src="iob1")
    convert_file(tmp_path / "bioes", tmp_path / "bio", "bio")
    assert (tmp_path / "bio").read_bytes() == orig.read_bytes()


def test_convert_to_bioes_keeps_docstart_and_sentence_breaks(tmp_path):
    text = "-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\nPeter NNP B-PER\nBlack NNP I-PER\n"
    src = write(tmp_path / "in.txt", text)
    done = convert_file(src, tmp_path / "out.txt", "bioes")
    assert (tmp_path / "out.txt").read_text() == (
        "-DOCSTART- -X- O\n\nEU NNP S-ORG\nrejects VBZ O\n\n\nPeter NNP B-PER\nBlack NNP E-PER\n")
    assert done == {"sentences": 2, "tokens": 4, "from": "BIO", "to": "BIOES"}


def test_convert_detects_a_bioes_source(tmp_path):
    src = write(tmp_path / "in.txt", "EU S-ORG\nPeter B-PER\nBlack E-PER\n")
    assert convert_file(src, tmp_path / "out.txt", "BIO")["from"] == "BIOES"
    assert (tmp_path / "out.txt").read_text() == "EU B-ORG\nPeter B-PER\nBlack I-PER\n"


def test_convert_bio_to_iob1_uses_b_only_between_adjacent_entities(tmp_path):
    src = write(tmp_path / "in.txt", "a B-PER\nb B-PER\nc O\nd B-LOC\n")
    convert_file(src, tmp_path / "out.txt", "iob1")
    assert (tmp_path / "out.txt").read_text() == "a I-PER\nb B-PER\nc O\nd I-LOC\n"


def test_columns_tag_word_are_written_word_first(tmp_path):
    src = write(tmp_path / "in.txt", "B-Actor steve\nI-Actor mcqueen\nO provided\n\nB-Year 1985\n")
    convert_file(src, tmp_path / "out.txt", "bio", columns="tag,word")
    assert (tmp_path / "out.txt").read_text() == "steve B-Actor\nmcqueen I-Actor\nprovided O\n\n1985 B-Year\n"


def test_columns_other_than_word_and_tag_are_kept_between(tmp_path):
    src = write(tmp_path / "in.txt", "B-ORG NNP EU\nO VBZ rejects\n")
    convert_file(src, tmp_path / "out.txt", "bioes", columns="tag,pos,word")
    assert (tmp_path / "out.txt").read_text() == "EU NNP S-ORG\nrejects VBZ O\n"


def test_columns_count_mismatch_names_the_line(tmp_path):
    src = write(tmp_path / "in.txt", "B-ORG EU\nO VBZ rejects\n")
    with pytest.raises(NerveError, match=r"in.txt:2: found 3 columns; expected 2 like --columns tag,word"):
        convert_file(src, tmp_path / "out.txt", "bio", columns="tag,word")


def test_columns_must_name_word_and_tag(tmp_path):
    src = write(tmp_path / "in.txt", "EU B-ORG\n")
    with pytest.raises(NerveError, match="'word' and 'tag' once each"):
        convert_file(src, tmp_path / "out.txt", "bio", columns="word,label")


def test_tag_first_file_without_columns_suggests_the_option(tmp_path):
    src = write(tmp_path / "in.txt", "B-Actor steve\n")
    with pytest.raises(NerveError, match=r"in.txt:1: .*pass --columns tag,word"):
        convert_file(src, tmp_path / "out.txt", "bio")
    assert not (tmp_path / "out.txt").exists()


def test_wrong_source_scheme_names_the_line(tmp_path):
    src = write(tmp_path / "in.txt", "a O\n\nb B-PER\nc E-PER\n")
    with pytest.raises(NerveError, match=r"in.txt:4: .*use --from"):
        convert_file(src, tmp_path / "out.txt", "bioes", src="bio")


def test_unknown_target_scheme_is_refused(tmp_path):
    src = write(tmp_path / "in.txt", "EU B-ORG\n")
    with pytest.raises(NerveError, match="expected one of bio, iob1, bioes"):
        convert_file(src, tmp_path / "out.txt", "bilou")


# ---------------------------------------------------------------- validation

KINDS = {
    "wrong column count": ("EU NNP B-ORG\nrejects O\n", [(2, "found 2 columns; expected 3 like line 1")]),
    "one column": ("EU B-ORG\nrejects\n", [(2, "found 1 column; expected at least 2")]),
    "empty token": ("EU\tB-ORG\n\tO\n", [(2, "empty token in column 1 of 2")]),
    "whitespace-only line": ("EU B-ORG\n  \nPeter B-PER\n", [(2, "line holds only whitespace")]),
    "underscore tag": ("a O\nb B_PER\n", [(2, "tag 'B_PER': unknown scheme")]),
    "unknown prefix": ("a X-PER\n", [(1, "tag 'X-PER': unknown scheme")]),
    "bare type": ("a O\n\nb PER\n", [(3, "tag 'PER': unknown scheme")]),
    "I after O": ("a O\nb I-PER\n", [(2, "I-PER follows O; expected B-PER")]),
    "I at sentence start": ("a O\n\nb I-LOC\nc I-LOC\n", [(3, "I-LOC starts a sentence")]),
    "I after DOCSTART": ("-DOCSTART- O\nb I-LOC\n", [(2, "I-LOC starts a sentence")]),
    "I after another type": ("a B-PER\nb I-ORG\n", [(2, "I-ORG follows B-PER of another type")]),
    "E after S": ("a S-PER\nb E-PER\n", [(2, "E-PER follows S-PER, which ends its entity")]),
}


@pytest.mark.parametrize("kind", KINDS)
def test_validate_finds_each_problem_kind_with_its_line(tmp_path, kind):
    text, want = KINDS[kind]
    path = write(tmp_path / "c.txt", text)
    found = validate_corpus(path)
    assert [(p.line, p.message[: len(m)]) for p, (_, m) in zip(found, want)] == want
    assert len(found) == len(want) and all(p.file == str(path) for p in found)


def test_validate_lists_every_problem_without_stopping(tmp_path):
    path = write(tmp_path / "c.txt", "a B_PER\nb I-PER\n\nc O\nd\ne O\nf I-LOC\ng X-LOC\n")
    assert [p.line for p in validate_corpus(path)] == [1, 5, 7, 8]


def test_validate_does_not_judge_a_tag_after_an_unreadable_line(tmp_path):
    path = write(tmp_path / "c.txt", "a X-PER\nb I-PER\nc\nd I-PER\n")
    assert [p.line for p in validate_corpus(path)] == [1, 3]


def test_validate_reports_invalid_utf8_and_goes_on(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"a O\nb\xff O\nc I-PER\n")
    assert [(p.line, p.message.split()[0]) for p in validate_corpus(path)] == [(2, "invalid"), (3, "I-PER")]


def test_validate_folder_reports_missing_split_files(tmp_path):
    write(tmp_path / "train.txt", "a O\n")
    assert [str(p) for p in validate_corpus(tmp_path)] == [
        f"{tmp_path / 'valid.txt'}: missing split file (a corpus folder holds train.txt, valid.txt, test.txt)",
        f"{tmp_path / 'test.txt'}: missing split file (a corpus folder holds train.txt, valid.txt, test.txt)"]


def test_problem_prints_as_file_line_message():
    assert str(Problem("a.txt", 3, "I-PER follows O")) == "a.txt:3: I-PER follows O"


@pytest.mark.parametrize("name", SENTENCES)
def test_validate_finds_no_problems_in_the_real_corpora(shared_data, name):
    assert validate_corpus(shared_data / name) == []


# ---------------------------------------------------------------- commands


def test_cli_validate_prints_problems_and_exits_1(tmp_path, capsys):
    path = write(tmp_path / "c.txt", "a O\nb I-PER\n")
    assert data("validate", path) == 1
    assert capsys.readouterr().out == f"{path}:2: I-PER follows O; expected B-PER\n"


def test_cli_validate_clean_corpus_says_no_problems(tmp_path, capsys):
    for split in ("train", "valid", "test"):
        write(tmp_path / f"{split}.txt", "EU B-ORG\n")
    assert data("validate", "mine", "--data", tmp_path) == 0
    assert capsys.readouterr().out == f"{tmp_path}: no problems\n"


def test_cli_stats_json_without_embeddings(tmp_path, capsys):
    write(tmp_path / "train.txt", "EU B-ORG\n")
    assert data("stats", tmp_path, "--json", "--no-embeddings") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["embeddings"] is None and stats["splits"]["train"]["entities"] == {"ORG": 1}


def test_cli_stats_by_name_with_data_dir(shared_data, capsys):
    assert data("stats", "wnut17", "--data", shared_data, "--no-embeddings") == 0
    assert "sentences           3,394   1,009   1,287" in capsys.readouterr().out


def test_cli_convert_takes_scheme_names_in_any_case(tmp_path, capsys):
    src = write(tmp_path / "in.txt", "B-Actor steve\n")
    assert data("convert", src, tmp_path / "out.txt", "--to", "BIOES", "--columns", "tag,word") == 0
    assert (tmp_path / "out.txt").read_text() == "steve S-Actor\n"
    assert "converted 1 sentences (1 tokens) from BIO to BIOES" in capsys.readouterr().err


def test_cli_stats_unknown_corpus_is_a_nerve_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NERVE_DATA", raising=False)
    with pytest.raises(NerveError, match="nerve data fetch conll2003"):
        data("stats", "conll2003", "--no-embeddings")
