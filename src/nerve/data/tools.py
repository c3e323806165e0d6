"""Corpus tools: tag-scheme and column-layout conversion, and a validator that lists every problem."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from nerve.data.conll import DOCSTART, stream_lines
from nerve.data.registry import SPLITS
from nerve.data.schemes import SCHEMES, convert, detect_scheme
from nerve.data.stats import bad_index, split_paths
from nerve.errors import NerveError
from nerve.io import atomic_write_text, gc_paused
from nerve.tags import is_tag, split_tag

PERCENTILES = (50, 90, 99)


# ---------------------------------------------------------------- conversion


def _scheme_name(name: str, what: str) -> str:
    upper = name.upper()
    if upper not in SCHEMES:
        raise NerveError(f"{what} {name!r}: expected one of {', '.join(s.lower() for s in SCHEMES)}")
    return upper


def parse_columns(columns: str | list[str] | None) -> list[str] | None:
    """Parse a ``--columns`` layout such as ``tag,word`` or ``word,pos,chunk,tag`` (None: word first, tag last).

    Raises:
        NerveError: if the layout does not name ``word`` and ``tag`` exactly once each.
    """
    if columns is None:
        return None
    names = [c.strip().lower() for c in (columns.split(",") if isinstance(columns, str) else columns)]
    if names.count("word") != 1 or names.count("tag") != 1 or "" in names:
        raise NerveError(f"--columns {','.join(names)}: expected comma-separated names with 'word' and 'tag' "
                         f"once each, e.g. word,tag or tag,word or word,pos,chunk,tag")
    return names


def _reorder(fields: list[str], names: list[str] | None) -> list[str]:
    """Put the word first and the tag last, other columns between them in their input order."""
    if names is None:
        return fields
    rest = [f for f, n in zip(fields, names) if n not in ("word", "tag")]
    return [fields[names.index("word")], *rest, fields[names.index("tag")]]


class _Block(NamedTuple):
    """A run of input lines: token rows of one sentence (``rows``) or lines copied verbatim (``raw``)."""

    rows: list[list[str]]
    lines: list[int]
    raw: str | None = None


def _is_docstart(fields: list[str], names: list[str] | None) -> bool:
    word = 0 if names is None else names.index("word")
    return DOCSTART in fields and len(fields) > word and fields[word] == DOCSTART


def _read_blocks(path: Path, names: list[str] | None) -> list[_Block]:
    """Split a CoNLL file into sentences (fields reordered to word-first, tag-last) and verbatim lines."""
    blocks: list[_Block] = []
    cur = _Block([], [])
    ncols = len(names) if names else None
    tag_at = -1 if names is None else names.index("tag")
    known: set[str] = set()  # tags already checked
    for lineno, _, fields in stream_lines(path):
        if fields and not _is_docstart(fields, names):
            if len(fields) != ncols or ncols < 2:
                ncols = _check_count(path, lineno, len(fields), ncols, names)
            if fields[tag_at] not in known:
                known.add(_check_tag(path, lineno, fields, tag_at))
            cur.rows.append(_reorder(fields, names) if names else fields)
            cur.lines.append(lineno)
            continue
        if cur.rows:
            blocks.append(cur)
            cur = _Block([], [])
        keep = _reorder(fields, names) if fields and names and len(fields) == len(names) else fields
        blocks.append(_Block([], [lineno], " ".join(keep)))
    if cur.rows:
        blocks.append(cur)
    return blocks


def _check_count(path: Path, lineno: int, n: int, ncols: int | None, names: list[str] | None) -> int:
    """The file's column count (the first token line's); raise for a line that differs or has one column."""
    if ncols is None:
        ncols = n
    if n != ncols or n < 2:
        layout = f"--columns {','.join(names)}" if names else "the lines before"
        found = f"found {n} column{'s' * (n != 1)}"
        raise NerveError(f"{path}:{lineno}: {found}; expected {max(ncols, 2)} like {layout}")
    return ncols


def _check_tag(path: Path, lineno: int, fields: list[str], tag_at: int) -> str:
    """Return the tag of a row; raise (with a --columns hint when the tag seems first) if it is invalid."""
    try:
        split_tag(fields[tag_at])
    except ValueError as err:
        hint = " (the tag looks like the first column: pass --columns tag,word)" if is_tag(fields[0]) else ""
        raise NerveError(f"{path}:{lineno}: {err}{hint}") from None
    return fields[tag_at]


def _convert_block(path: Path, block: _Block, src: str, dst: str) -> list[str]:
    tags = [r[-1] for r in block.rows]
    try:
        new = convert(tags, src, dst)
    except ValueError as err:
        line = block.lines[bad_index(tags, src)]
        raise NerveError(f"{path}:{line}: {err} (use --from to name the source scheme)") from None
    return [" ".join([*r[:-1], t]) for r, t in zip(block.rows, new)]


def convert_file(in_path: str | os.PathLike, out_path: str | os.PathLike, to: str, src: str | None = None,
                 columns: str | list[str] | None = None) -> dict:
    """Rewrite a CoNLL file in another tag scheme and the word-first, tag-last column layout.

    Spans are kept exactly (read by conlleval rules, written canonically). ``-DOCSTART-`` lines and sentence
    breaks are kept; fields are written separated by one space. The output is written atomically.

    Args:
        in_path: CoNLL file to read.
        out_path: file to write (may equal ``in_path``).
        to: target scheme: bio, bioes or iob1 (any case).
        src: source scheme; None detects it (BIOES if any E-/S- tag occurs, else BIO, which reads IOB1 too).
        columns: input layout by names, e.g. ``tag,word`` (MIT Movie's originals); None: word first, tag last.

    Returns:
        {"sentences", "tokens", "from", "to"}.

    Raises:
        NerveError: unknown scheme or layout, wrong column count or invalid tag (file and line named).
    """
    in_path = Path(in_path)
    if not in_path.is_file():
        raise NerveError(f"{in_path}: no such file (expected a CoNLL column file)")
    dst = _scheme_name(to, "--to")
    with gc_paused():
        blocks = _read_blocks(in_path, parse_columns(columns))
        sents = [b for b in blocks if b.raw is None]
        src = _scheme_name(src, "--from") if src else detect_scheme({r[-1] for b in sents for r in b.rows})
        out: list[str] = []
        for block in blocks:
            out += [block.raw] if block.raw is not None else _convert_block(in_path, block, src, dst)
    atomic_write_text(out_path, "\n".join(out) + "\n" if out else "")
    return {"sentences": len(sents), "tokens": sum(len(b.rows) for b in sents), "from": src, "to": dst}


# ---------------------------------------------------------------- validation


class Problem(NamedTuple):
    """One problem in a corpus file; ``line`` is 1-based (0: about the whole file)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


def _empty_token(line: str, fields: list[str]) -> str | None:
    """Describe an empty token on a line, or None: a whitespace-only line or an empty tab-separated field."""
    if not fields:
        return "line holds only whitespace; expected an empty line (sentence break) or 'word ... tag'"
    if "\t" in line:
        cols = line.split("\t")
        for k, col in enumerate(cols, start=1):
            if not col.strip():
                return f"empty token in column {k} of {len(cols)} (tab-separated)"
    return None


def _tag_problem(tag: str, prev: tuple[str, str] | None, prev_tag: str) -> tuple[str | None, tuple | None]:
    """Check one tag against the previous one (None at a sentence start; ("?", "") after an unknown tag).

    Returns:
        (message or None, the state to pass as ``prev`` for the next token).
    """
    try:
        prefix, type_ = split_tag(tag)
    except ValueError:
        return (f"tag {tag!r}: unknown scheme; expected O or B-, I-, E-, S- followed by a type "
                f"(e.g. B-PER)"), ("?", "")
    cur = (prefix, type_)
    if prefix not in "IE" or prev == ("?", ""):
        return None, cur
    if prev is None:
        return f"{tag} starts a sentence; expected B-{type_}", cur
    if prev[0] == "O":
        return f"{tag} follows O; expected B-{type_}", cur
    if prev[1] != type_:
        return f"{tag} follows {prev_tag} of another type; expected B-{type_}", cur
    if prev[0] in "ES":
        return f"{tag} follows {prev_tag}, which ends its entity; expected B-{type_}", cur
    return None, cur


class _State:
    """What validation carries from line to line: the file's column count and the previous tag."""

    def __init__(self) -> None:
        self.ncols: tuple[int, int] | None = None  # (columns, line where first seen)
        self.prev: tuple[str, str] | None = None  # None at a sentence start
        self.prev_tag = ""


def _line_problems(line: str, fields: list[str], lineno: int, state: _State) -> list[str]:
    """Problems of one non-blank, non-DOCSTART line."""
    empty = _empty_token(line, fields) if not fields or "\t" in line else None
    out = [empty] if empty else []
    if not fields:
        state.prev = None
        return out
    if state.ncols is None:
        state.ncols = (len(fields), lineno)
    ncols, first = state.ncols
    if len(fields) < 2:
        state.prev = ("?", "")
        return out or [f"found {len(fields)} column; expected at least 2 (word ... tag)"]
    if len(fields) != ncols and not empty:  # an empty token already explains a missing column
        out.append(f"found {len(fields)} columns; expected {ncols} like line {first}")
    message, state.prev = _tag_problem(fields[-1], state.prev, state.prev_tag)
    state.prev_tag = fields[-1]
    return out + [message] if message else out


def validate_file(path: str | os.PathLike) -> list[Problem]:
    """List every problem of one CoNLL file (see :func:`validate_corpus`)."""
    path = Path(path)
    problems: list[Problem] = []
    state = _State()
    lines = stream_lines(path, problem=lambda lineno, message: problems.append(Problem(str(path), lineno, message)))
    for lineno, line, fields in lines:
        if not line or (fields and fields[0] == DOCSTART):
            state.prev = None
            continue
        if fields and fields[-1] == "O" and state.ncols and len(fields) == state.ncols[0] > 1 and "\t" not in line:
            state.prev, state.prev_tag = ("O", ""), "O"  # fast path: the commonest, always valid line
            continue
        problems += [Problem(str(path), lineno, m) for m in _line_problems(line, fields, lineno, state)]
    return sorted(problems, key=lambda p: p.line)


def validate_corpus(path_or_dir: str | os.PathLike) -> list[Problem]:
    """List every problem of a corpus file or folder, without stopping at the first.

    Checks: invalid UTF-8, column counts (at least 2, the same on every token line of a file), empty tokens
    (whitespace-only lines, empty tab-separated fields), tags that are not O or B-/I-/E-/S-TYPE ("unknown
    scheme", e.g. B_PER, X-PER, PER), and an I-x or E-x at a sentence start, after O, after another type or
    after an entity's end (BIO and BIOES rules: an IOB1 file's entity-initial I-x is reported too). A folder's
    missing split files are problems too.

    Args:
        path_or_dir: one CoNLL file, or a folder with train.txt, valid.txt, test.txt.

    Returns:
        problems in file and line order; empty when the corpus is clean.

    Raises:
        NerveError: no such file or folder, or a folder without any split file.
    """
    path = Path(path_or_dir)
    files = split_paths(path)
    problems = [Problem(str(path / f), 0, f"missing split file (a corpus folder holds {', '.join(SPLITS)})")
                for f in SPLITS if path.is_dir() and not (path / f).is_file()]
    with gc_paused():
        for file in files.values():
            problems += validate_file(file)
    return problems
