"""Tags: the one place a tag is parsed (``O`` or ``P-TYPE``), typed, ordered, and its legal transitions listed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

PREFIXES = "BIES"  # B(egin), I(nside), E(nd), S(ingle); O is outside
SCHEME_PREFIXES = {"BIO": frozenset("BI"), "IOB1": frozenset("BI"), "BIOES": frozenset("BIES")}
OUTSIDE = ("O", "")


def split_tag(tag: str) -> tuple[str, str]:
    """Split a tag into its prefix and entity type.

    Args:
        tag: "O" or "<P>-<TYPE>" with P one of B, I, E, S and a non-empty TYPE.

    Returns:
        (prefix, type); "O" gives ("O", "").

    Raises:
        ValueError: if the tag has neither form (e.g. "B_PER", "X-PER", "PER").
    """
    if tag == "O":
        return OUTSIDE
    if not isinstance(tag, str) or len(tag) < 3 or tag[0] not in PREFIXES or tag[1] != "-":
        raise ValueError(f"tag {tag!r}: expected 'O' or '<P>-<TYPE>' with P in B, I, E, S")
    return tag[0], tag[2:]


def is_tag(tag: str) -> bool:
    """True for "O" or a "<P>-<TYPE>" tag that ``split_tag`` accepts."""
    try:
        split_tag(tag)
    except ValueError:
        return False
    return True


def split_or_outside(tag: str) -> tuple[str, str]:
    """``split_tag``, with any other string (padding, a label of another kind) read as O."""
    try:
        return split_tag(tag)
    except ValueError:
        return OUTSIDE


def entity_type(tag: str) -> str | None:
    """The entity type of a prefixed tag (``B-LOC`` -> ``LOC``), None for O and any other string."""
    prefix, type_ = split_or_outside(str(tag))
    return type_ if prefix != "O" else None


def entity_types(tags: Iterable[str]) -> list[str]:
    """Sorted entity types of the prefixed tags among ``tags``."""
    return sorted({t for t in map(entity_type, tags) if t is not None})


def sort_key(tag: str) -> tuple:
    """Order of tags everywhere (vocabularies, tables, figures): by entity type, within a type B, I, E, S;
    strings that are not tags after the typed ones; O last."""
    if tag == "O":
        return (2, "", 0)
    try:
        prefix, type_ = split_tag(tag)
    except ValueError:
        return (1, str(tag), 0)
    return (0, type_, PREFIXES.index(prefix))


def tag_order(tags: Sequence[str]) -> list[int]:
    """Indices into ``tags`` in ``sort_key`` order (ties by index)."""
    return sorted(range(len(tags)), key=lambda i: (*sort_key(str(tags[i])), i))


def allowed_transitions(tags: Sequence[str], scheme: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tag may follow which in ``scheme``, and which may start or end a sentence.

    A tag whose prefix the scheme does not have (and any string that is not a tag) is left unconstrained.

    Args:
        tags: tag strings in tag-index order.
        scheme: "BIO" (or "IOB2") or "BIOES", any case.

    Returns:
        (allowed (T, T) bool indexed [from, to], allowed_start (T,) bool, allowed_end (T,) bool).

    Raises:
        ValueError: an unknown scheme.
    """
    name = scheme.upper() if isinstance(scheme, str) else scheme
    name = "BIO" if name == "IOB2" else name
    if name not in ("BIO", "BIOES"):
        raise ValueError(f"expected scheme 'BIO' or 'BIOES', got {scheme!r}")
    prefixes = SCHEME_PREFIXES[name] | {"O"}
    parsed = [p if (p := split_or_outside(t))[0] in prefixes and (is_tag(t)) else None for t in tags]
    n = len(tags)
    allowed = np.ones((n, n), dtype=bool)
    start = np.ones(n, dtype=bool)
    end = np.ones(n, dtype=bool)
    for i, frm in enumerate(parsed):
        if frm is None:
            continue
        if name == "BIOES":
            start[i] = frm[0] in "OBS"
            end[i] = frm[0] in "OES"
        elif frm[0] == "I":
            start[i] = False
        for j, to in enumerate(parsed):
            if to is not None:
                allowed[i, j] = _follows(frm, to, name)
    return allowed, start, end


def _follows(frm: tuple[str, str], to: tuple[str, str], scheme: str) -> bool:
    if scheme == "BIOES":
        if frm[0] in "BI":
            return to[0] in "IE" and to[1] == frm[1]
        return to[0] in "OBS"
    return to[0] != "I" or (frm[0] in "BI" and frm[1] == to[1])


def tag_filenames(tags: Sequence[str], reserved: Sequence[str] = ()) -> dict[str, str]:
    """A distinct filesystem-safe stem for every tag (runs of other characters become "_"), none in ``reserved``."""
    out: dict[str, str] = {}
    used: set[str] = set(reserved)
    for tag in tags:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(tag)).strip("_") or "tag"
        base, i = stem, 1
        while stem in used:
            stem, i = f"{base}_{i}", i + 1
        used.add(stem)
        out[str(tag)] = stem
    return out
