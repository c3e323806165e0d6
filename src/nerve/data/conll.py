"""Read and write CoNLL column files: word first, tag last, blank line ends a sentence."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nerve.errors import NerveError
from nerve.text import COLUMN_SEP, columns, field_splitter, line_problem, text_lines

DOCSTART = "-DOCSTART-"
_DIGITS = re.compile(r"\d")
@dataclass
class Sentence:
    """One sentence: words, tags (may be empty for unlabelled text), extra columns, source line."""

    words: list[str]
    tags: list[str] = field(default_factory=list)
    columns: list[list[str]] = field(default_factory=list)  # every column of every token, as read
    line: int = 0  # 1-based line number of the first token in the source file

    def __len__(self) -> int:
        return len(self.words)


def normalize_number(word: str) -> str:
    """Replace every digit with 0, as NCRF++ does with ``number_normalized``."""
    return _DIGITS.sub("0", word)


def decode_utf8(raw: bytes) -> tuple[str, tuple[int, int] | None]:
    """Text of ``raw`` without a BOM, and (line, byte) of the first invalid UTF-8 byte (None if valid;
    invalid bytes are then replaced)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as err:
        bad = (raw[: err.start].count(b"\n") + 1, raw[err.start])
        return raw.decode("utf-8", errors="replace"), bad


def _decode(path: Path) -> str:
    text, bad = decode_utf8(path.read_bytes())
    if bad is not None:
        raise NerveError(f"{path}:{bad[0]}: invalid UTF-8 byte 0x{bad[1]:02x}; expected a UTF-8 text file")
    return text


def stream_lines(path: str | os.PathLike, problem=None) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, line, columns) of every line of a text file, read one line at a time (the streaming form
    of ``read_conll``'s reading, for files of any size: validation and conversion).

    The line rule of ``nerve.text`` applies and a leading UTF-8 byte-order mark is dropped. A line that breaks
    it (invalid UTF-8, a control character) raises a NerveError naming the file and line, or, when
    ``problem(lineno, message)`` is given, is reported there and read with the bad bytes replaced.
    """
    path = Path(path)
    if not path.is_file():
        raise NerveError(f"{path}: no such file (expected a CoNLL column file)")

    def bad(lineno: int, message: str) -> None:
        if problem is None:
            raise NerveError(f"{path}:{lineno}: {message}")
        problem(lineno, message)

    with open(path, "rb") as f:  # binary lines end at b"\n" only
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad(lineno, f"invalid UTF-8 byte 0x{raw[err.start]:02x}; expected a UTF-8 text file")
                line = raw.decode("utf-8", errors="replace")
            message = line_problem(line)
            if message is not None:
                bad(lineno, message)
            yield lineno, line, columns(line)


def read_conll(path: str | os.PathLike, labelled: bool = True, min_columns: int = 2) -> list[Sentence]:
    """Read a CoNLL column file into sentences.

    Columns are separated by any whitespace; the word is the first column and (when ``labelled``) the tag the
    last. ``-DOCSTART-`` lines are dropped. Every token line of a file must have the same number of columns.

    Raises:
        NerveError: missing file, invalid UTF-8, or a line whose column count differs (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise NerveError(f"{path}: no such file (expected a CoNLL column file)")
    from nerve.io import gc_paused

    with gc_paused():
        return _parse(path, _decode(path), labelled, min_columns)


def _parse(path: Path, text: str, labelled: bool, min_columns: int) -> list[Sentence]:
    sentences: list[Sentence] = []
    rows: list[list[str]] = []
    start = 0
    ncols = None
    fields_of = field_splitter(text)
    for lineno, line in enumerate(text_lines(path, text), start=1):
        fields = fields_of(line)
        if not fields:
            if rows:
                sentences.append(_make(rows, start, labelled))
                rows = []
            continue
        if fields[0] == DOCSTART:
            if rows:
                sentences.append(_make(rows, start, labelled))
                rows = []
            continue
        if ncols is None:
            ncols = len(fields)
            if labelled and ncols < min_columns:
                raise NerveError(
                    f"{path}:{lineno}: found {ncols} column; expected at least {min_columns} (word ... tag)"
                )
        elif len(fields) != ncols:
            raise NerveError(f"{path}:{lineno}: found {len(fields)} columns; expected {ncols} like the lines before")
        if not rows:
            start = lineno
        rows.append(fields)
    if rows:
        sentences.append(_make(rows, start, labelled))
    return sentences


def _make(rows: list[list[str]], line: int, labelled: bool) -> Sentence:
    words = [r[0] for r in rows]
    tags = [r[-1] for r in rows] if labelled else []
    return Sentence(words=words, tags=tags, columns=rows, line=line)


def read_text(path: str | os.PathLike) -> list[Sentence]:
    """Read plain text, one tokenised sentence per line (an empty line is an empty sentence)."""
    path = Path(path)
    if not path.is_file():
        raise NerveError(f"{path}: no such file (expected a text file, one tokenised sentence per line)")
    out = []
    text = _decode(path)
    fields_of = field_splitter(text)
    for lineno, line in enumerate(text_lines(path, text), start=1):
        words = fields_of(line)
        out.append(Sentence(words=words, columns=[[w] for w in words], line=lineno))
    return out


def looks_like_conll(path: str | os.PathLike) -> bool:
    """Guess whether a file is a CoNLL column file (several columns, tag-like last column) or plain text."""
    from nerve.tags import split_tag

    seen = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        for line in f:
            fields = COLUMN_SEP.split(line.strip(" \t\r\n"))
            fields = [x for x in fields if x]
            if not fields or fields[0] == DOCSTART:
                continue
            if len(fields) < 2:
                return False
            try:
                split_tag(fields[-1])
            except ValueError:
                return False
            seen += 1
            if seen >= 20:
                break
    return seen > 0

