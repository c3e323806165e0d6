"""The line rule of every reader: lines end at \\n (a \\r before it is dropped); columns are separated by spaces
and tabs; any other control character (C0/C1, a lone \\r, U+2028/U+2029) is refused with its file and line, and
every other character (non-breaking spaces included) is part of its token."""

from __future__ import annotations

import re
from pathlib import Path

from nerve.errors import NerveError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_OTHER_SPACE = re.compile(r"[^\S \t\n]")  # whitespace that str.split() would cut at, besides space and tab
COLUMN_SEP = re.compile(r"[ \t]+")


def control_characters(text: str) -> list[tuple[int, str]]:
    """(line, description) of every line holding a refused control character (line rule above)."""
    text = text.replace("\r\n", "\n")
    out: list[tuple[int, str]] = []
    for m in _CONTROL.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if out and out[-1][0] == line:
            continue
        c = m.group()
        what = "a carriage return not followed by a line feed" if c == "\r" else f"control character U+{ord(c):04X}"
        out.append((line, f"{what}; expected lines that end with \\n and columns separated by spaces or tabs"))
    return out


def line_problem(line: str) -> str | None:
    """What refuses one line (without its line end) under the line rule, or None."""
    m = _CONTROL.search(line)
    if m is None:
        return None
    c = m.group()
    what = "a carriage return not followed by a line feed" if c == "\r" else f"control character U+{ord(c):04X}"
    return f"{what}; expected lines that end with \\n and columns separated by spaces or tabs"


def columns(line: str) -> list[str]:
    """The columns of one line: split at spaces and tabs only."""
    return line.split() if not _OTHER_SPACE.search(line) else [f for f in COLUMN_SEP.split(line) if f]


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split at \\n only (\\r\\n accepted); a final line end adds no empty line."""
    if not text:
        return []
    lines = text.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def field_splitter(text: str):
    """A function that splits one line of ``text`` into columns at spaces and tabs only (fast path when the
    text holds no other whitespace)."""
    if not _OTHER_SPACE.search(text):
        return str.split
    return lambda line: [f for f in COLUMN_SEP.split(line) if f]


def text_lines(path: Path, text: str) -> list[str]:
    """``split_lines`` of ``text`` after refusing control characters with file and line."""
    bad = control_characters(text) if _CONTROL.search(text) else []
    if bad:
        raise NerveError(f"{path}:{bad[0][0]}: {bad[0][1]}")
    return split_lines(text)
