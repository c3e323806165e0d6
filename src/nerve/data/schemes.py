"""Tagging schemes (BIO/IOB2, IOB1, BIOES): parsing, conlleval span reading, conversion, repair."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import chain

from nerve.tags import SCHEME_PREFIXES as PREFIXES
from nerve.tags import is_tag, split_tag

SCHEMES = ("BIO", "IOB1", "BIOES")

Span = tuple[str, int, int]


def _check_scheme(scheme: str) -> None:
    if scheme not in PREFIXES:
        raise ValueError(f"scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")


def _parse(tags: Iterable[str], scheme: str) -> list[tuple[str, str]]:
    """Split every tag and check its prefix is allowed in ``scheme``."""
    _check_scheme(scheme)
    allowed = PREFIXES[scheme]
    parsed = []
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag)
        if prefix != "O" and prefix not in allowed:
            raise ValueError(
                f"tag {tag!r} at {i}: expected prefixes {'/'.join(sorted(allowed))} or O in {scheme}"
            )
        parsed.append((prefix, type_))
    return parsed


def end_of_chunk(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """conlleval (seqeval default mode) rule: does a chunk end between ``prev`` and ``cur``?

    Args:
        prev: (prefix, type) of the previous token; ("O", "") at a sentence start.
        cur: (prefix, type) of the current token; ("O", "") past a sentence end.
    """
    (pp, pt), (cp, ct) = prev, cur
    if pp in "ES":
        return True
    if pp in "BI" and cp in "BSO":
        return True
    return pp != "O" and pt != ct


def start_of_chunk(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """conlleval (seqeval default mode) rule: does a chunk start at ``cur``?

    Args:
        prev: (prefix, type) of the previous token; ("O", "") at a sentence start.
        cur: (prefix, type) of the current token.
    """
    (pp, pt), (cp, ct) = prev, cur
    if cp in "BS":
        return True
    if pp in "ESO" and cp in "EI":
        return True
    return cp != "O" and pt != ct


def read_chunks(parsed: Sequence[tuple[str, str]]) -> list[Span]:
    """Read the entities of one sentence of already split tags by conlleval rules.

    Args:
        parsed: (n_tokens,) (prefix, type) pairs as from :func:`split_tag`.

    Returns:
        [(type, start, end)] with ``end`` inclusive, in order of position.
    """
    out: list[Span] = []
    prev, begin = ("O", ""), 0
    for i, cur in enumerate([*parsed, ("O", "")]):
        if end_of_chunk(prev, cur):
            out.append((prev[1], begin, i - 1))
        if start_of_chunk(prev, cur):
            begin = i
        prev = cur
    return out


def spans(tags: Sequence[str], scheme: str = "BIO") -> list[Span]:
    """Read the entities of one sentence by conlleval rules (seqeval's default mode).

    An I-x that starts a chunk (after O, the start or another type) starts an entity;
    IOB1 is read the same way (its B-x only occurs right after an x chunk, where it
    starts a new one); BIOES uses conlleval's E/S rules.

    Args:
        tags: (n_tokens,) tag strings of one sentence.
        scheme: "BIO", "IOB1" or "BIOES"; BIO and IOB1 tags may only use B and I.

    Returns:
        [(type, start, end)] with ``end`` inclusive, in order of position.
    """
    return read_chunks(_parse(tags, scheme))


def _encode(n: int, found: Sequence[Span], dst: str) -> list[str]:
    """Write spans canonically as ``n`` tags in scheme ``dst``."""
    out = ["O"] * n
    prev_end, prev_type = -2, ""
    for type_, start, end in found:
        for i in range(start, end + 1):
            out[i] = f"I-{type_}"
        if dst == "BIO":
            out[start] = f"B-{type_}"
        elif dst == "BIOES":
            out[start] = f"B-{type_}" if end > start else f"S-{type_}"
            if end > start:
                out[end] = f"E-{type_}"
        elif prev_end == start - 1 and prev_type == type_:
            out[start] = f"B-{type_}"
        prev_end, prev_type = end, type_
    return out


def convert(tags: Sequence[str], src: str, dst: str) -> list[str]:
    """Re-encode one sentence from scheme ``src`` to ``dst``, keeping its spans.

    Spans are read by conlleval rules (so invalid input such as I-x after O is
    accepted) and written canonically: BIO uses B-x then I-x; BIOES uses S-x, or
    B-x I-x.. E-x; IOB1 uses I-x, with B-x only where an x chunk ends just before.

    Args:
        tags: (n_tokens,) tag strings in scheme ``src``.
        src: "BIO", "IOB1" or "BIOES".
        dst: "BIO", "IOB1" or "BIOES".

    Returns:
        (n_tokens,) tags in scheme ``dst`` with ``spans(out, dst) == spans(tags, src)``.
    """
    _check_scheme(dst)
    return _encode(len(tags), spans(tags, src), dst)


def detect_scheme(tag_set: Iterable[str]) -> str:
    """Guess the scheme of a tag set: "BIOES" if any E- or S- tag occurs, else "BIO".

    Args:
        tag_set: tag strings (any iterable, duplicates allowed).
    """
    prefixes = {split_tag(tag)[0] for tag in tag_set}
    return "BIOES" if prefixes & {"E", "S"} else "BIO"


def bio_errors(tags: Sequence[str]) -> list[tuple[int, str]]:
    """Find BIO violations: an I-x after O, at the start, or after a tag of another type.

    Args:
        tags: (n_tokens,) BIO tags of one sentence.

    Returns:
        [(index, message)] for each offending I-x, in order.
    """
    parsed = _parse(tags, "BIO")
    errors = []
    for i, (prefix, type_) in enumerate(parsed):
        if prefix != "I":
            continue
        if i == 0:
            errors.append((i, f"{tags[i]} at {i} starts the sentence"))
        elif parsed[i - 1][0] == "O":
            errors.append((i, f"{tags[i]} at {i} follows O"))
        elif parsed[i - 1][1] != type_:
            errors.append((i, f"{tags[i]} at {i} follows {tags[i - 1]} of another type"))
    return errors


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Turn each I-x flagged by :func:`bio_errors` into B-x (spans are unchanged).

    Args:
        tags: (n_tokens,) BIO tags of one sentence.

    Returns:
        (n_tokens,) valid BIO tags.
    """
    out = list(tags)
    for i, _ in bio_errors(tags):
        out[i] = "B-" + out[i][2:]
    return out


def _bio_clean(sentences, distinct: set[str]) -> bool:
    """True when all tags are O/B-/I- and no sentence has an I-x after O, at its start or after another type."""
    if any(t[0] not in "OBI" for t in distinct):
        return False
    pairs: set[tuple[str, str]] = set()
    for s in sentences:
        pairs.update(zip(chain(("O",), s.tags), s.tags))
    return not any(cur[0] == "I" and (prev == "O" or prev[2:] != cur[2:]) for prev, cur in pairs)


def clean_bio_to_bioes(tags: Sequence[str]) -> list[str]:
    """``convert(tags, "BIO", "BIOES")`` for valid BIO (no I-x after O, at the start or after another type),
    by looking one tag ahead: a chunk goes on exactly where the next tag is I- of the same type."""
    out = []
    for tag, nxt in zip(tags, [*tags[1:], "O"]):
        if tag == "O" or (nxt[0] == "I" and nxt[2:] == tag[2:]):
            out.append(tag)
        else:
            out.append(("S-" if tag[0] == "B" else "E-") + tag[2:])
    return out


def check_and_convert(sentences, path, input_scheme: str, scheme: str, repair: bool = False) -> str:
    """Check every tag of ``sentences`` (in place) and convert them from ``input_scheme`` to ``scheme``.

    ``input_scheme`` "AUTO" means BIOES when any E-/S- tag occurs, else BIO. In BIO input an I-x after O, at a
    sentence start or after another type is an error unless ``repair`` (then it becomes B-x).

    Returns:
        The input scheme used.

    Raises:
        NerveError: naming file and line of the first bad tag.
    """
    from nerve.errors import NerveError

    distinct = set(chain.from_iterable(s.tags for s in sentences))
    if not all(is_tag(t) for t in distinct):  # find the first bad one only when there is one
        for s in sentences:
            for i, tag in enumerate(s.tags):
                if not is_tag(tag):
                    raise NerveError(f"{path}:{s.line + i}: tag {tag!r} is not O or B-/I-/E-/S-TYPE "
                                     "(expected a BIO, IOB1 or BIOES tag)")
    if input_scheme.upper() == "AUTO":
        input_scheme = detect_scheme(distinct)
    input_scheme, target = input_scheme.upper(), scheme.upper()
    clean = input_scheme != "BIO" or _bio_clean(sentences, distinct)
    if input_scheme == target and clean:
        return input_scheme  # nothing to repair or convert
    converted: dict[tuple[str, ...], list[str]] = {}  # many sentences share a tag sequence (all O, say)
    for s in sentences:
        if not clean:
            try:
                errors = bio_errors(s.tags)
            except ValueError as err:
                raise NerveError(f"{path}:{s.line}: {err} (the file's tags are not {input_scheme})") from None
            if errors and not repair:
                i, msg = errors[0]
                msg = re.sub(r" at \d+", "", msg)
                raise NerveError(f"{path}:{s.line + i}: {msg} (invalid BIO; fix the file or pass --repair-bio)")
            if errors:
                s.tags = repair_bio(s.tags)
        if input_scheme != target:
            key = tuple(s.tags)
            if key not in converted:
                try:
                    fast = clean and input_scheme == "BIO" and target == "BIOES"
                    converted[key] = clean_bio_to_bioes(s.tags) if fast else convert(s.tags, input_scheme, target)
                except ValueError as err:
                    raise NerveError(f"{path}:{s.line}: {err} (the file's tags are not {input_scheme})") from None
            s.tags = list(converted[key])
    return input_scheme
