"""Corpus statistics: sentences, documents, tokens, entities per type, sentence lengths, tags, and the share of
words found in a pretrained embedding table."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from nerve.data.conll import DOCSTART, Sentence, read_conll
from nerve.data.registry import SPLITS
from nerve.data.schemes import detect_scheme, spans
from nerve.errors import NerveError
from nerve.tags import is_tag, sort_key

PERCENTILES = (50, 90, 99)


def split_paths(path: str | os.PathLike) -> dict[str, Path]:
    """The split files of a corpus: {"train": ..., "valid": ..., "test": ...} for a folder (those present),
    or {stem: path} for one file.

    Raises:
        NerveError: no such file or folder, or a folder without any split file.
    """
    path = Path(path)
    if path.is_file():
        return {path.stem: path}
    if not path.is_dir():
        raise NerveError(f"{path}: no such corpus file or folder")
    found = {Path(f).stem: path / f for f in SPLITS if (path / f).is_file()}
    if not found:
        raise NerveError(f"{path}: no split files; expected {', '.join(SPLITS)}")
    return found


def _sentence_spans(sent: Sentence, scheme: str, path: Path) -> list[tuple[str, int, int]]:
    try:
        return spans(sent.tags, scheme)
    except ValueError as err:
        raise NerveError(f"{path}:{sent.line + bad_index(sent.tags, scheme)}: {err} "
                         f"(run `nerve data validate` to list every problem)") from None


def bad_index(tags: list[str], scheme: str) -> int:
    """Index of the first tag that ``scheme`` rejects (0 if none is found)."""
    for i, tag in enumerate(tags):
        try:
            spans([tag], scheme)
        except ValueError:
            return i
    return 0


def _scheme_of(sentences: dict[Path, list[Sentence]]) -> str:
    """Detect the scheme of all tags; the first invalid tag is reported with its file and line."""
    tags = {t for sents in sentences.values() for s in sents for t in s.tags}
    bad = {t for t in tags if not is_tag(t)}
    for path, sents in sentences.items() if bad else ():
        for sent in sents:
            for i, tag in enumerate(sent.tags):
                if tag in bad:
                    raise NerveError(f"{path}:{sent.line + i}: tag {tag!r}: expected O or B-, I-, E-, S- followed "
                                     f"by a type (run `nerve data validate` to list every problem)")
    return detect_scheme(tags)


def percentile_lengths(lengths: list[int]) -> dict[str, int]:
    """Nearest-rank percentiles 50/90/99 and the maximum of sentence lengths (all 0 for no sentences)."""
    ordered = sorted(lengths)
    if not ordered:
        return {**{f"p{p}": 0 for p in PERCENTILES}, "max": 0}
    out = {f"p{p}": ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] for p in PERCENTILES}
    out["max"] = ordered[-1]
    return out


def _coverage(words: Counter, pretrained) -> dict[str, float | int]:
    found = {w for w in words if pretrained.row(w) is not None}
    tokens = sum(words.values())
    hit = sum(words[w] for w in found)
    return {"tokens": hit / tokens if tokens else 0.0, "types": len(found) / len(words) if words else 0.0,
            "tokens_found": hit, "types_found": len(found), "types_total": len(words)}


def _documents(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.startswith(DOCSTART.encode()))


def _split_stats(path: Path, sents: list[Sentence], scheme: str, pretrained) -> dict:
    entities: Counter = Counter()
    tags: Counter = Counter()
    words: Counter = Counter()
    for sent in sents:
        entities.update(t for t, _, _ in _sentence_spans(sent, scheme, path))
        tags.update(sent.tags)
        words.update(sent.words)
    out = {"file": str(path), "sentences": len(sents), "documents": _documents(path),
           "tokens": sum(len(s) for s in sents), "entities": dict(sorted(entities.items())),
           "entities_total": sum(entities.values()),
           "tags": dict(sorted(tags.items(), key=lambda item: sort_key(item[0]))),
           "length": percentile_lengths([len(s) for s in sents])}
    if pretrained is not None:
        out["coverage"] = _coverage(words, pretrained)
    return out


def corpus_stats(corpus_dir: str | os.PathLike, pretrained=None) -> dict:
    """Statistics of each split of a corpus.

    Args:
        corpus_dir: a corpus folder (train.txt, valid.txt, test.txt; those present are used) or one file.
        pretrained: an embedding table with ``.row(word)`` (exact, then lower-case lookup; digits are not
            normalised) for vocabulary coverage, or None to skip coverage.

    Returns:
        {"corpus", "scheme", "embeddings", "splits": {split: {"file", "sentences", "documents", "tokens",
        "entities": {type: n}, "entities_total", "tags": {tag: n}, "length": {"p50", "p90", "p99", "max"},
        "coverage": {"tokens", "types" (shares in [0, 1]), "tokens_found", "types_found", "types_total"}}}};
        entities are read by conlleval rules; "coverage" only with ``pretrained``.

    Raises:
        NerveError: unreadable file, wrong column count or an invalid tag (file and line named).
    """
    paths = split_paths(corpus_dir)
    sentences = {p: read_conll(p) for p in paths.values()}
    scheme = _scheme_of(sentences)
    splits = {split: _split_stats(p, sentences[p], scheme, pretrained) for split, p in paths.items()}
    return {"corpus": str(corpus_dir), "scheme": scheme,
            "embeddings": getattr(pretrained, "source", "given") if pretrained is not None else None,
            "splits": splits}


def _fmt(value) -> str:
    return f"{value:.1%}" if isinstance(value, float) else f"{value:,}"


def _stat_rows(stats: dict) -> list[tuple[str, list]]:
    splits = list(stats["splits"].values())
    keys = ("sentences", "documents", "tokens") if any(s["documents"] for s in splits) else ("sentences", "tokens")
    rows = [(key, [s[key] for s in splits]) for key in keys]
    rows.append(("entities", [s["entities_total"] for s in splits]))
    types = sorted({t for s in splits for t in s["entities"]})
    rows += [(f"  {t}", [s["entities"].get(t, 0) for s in splits]) for t in types]
    rows += [(f"length {k}", [s["length"][k] for s in splits]) for k in (*[f"p{p}" for p in PERCENTILES], "max")]
    if all("coverage" in s for s in splits):
        rows += [(f"in embeddings ({k})", [s["coverage"][k] for s in splits]) for k in ("tokens", "types")]
    tags = sorted({t for s in splits for t in s["tags"]}, key=sort_key)
    rows.append(("tags", [""] * len(splits)))
    rows += [(f"  {t}", [s["tags"].get(t, 0) for s in splits]) for t in tags]
    return rows


def format_stats(stats: dict) -> str:
    """Format :func:`corpus_stats` output as a plain-text table, one column per split."""
    rows = _stat_rows(stats)
    names = list(stats["splits"])
    cells = [[_fmt(v) if v != "" else "" for v in values] for _, values in rows]
    label_w = max(len(label) for label, _ in rows)
    widths = [max(len(names[j]), *(len(c[j]) for c in cells)) for j in range(len(names))]
    emb = f"; coverage by {stats['embeddings']}" if stats.get("embeddings") else ""
    lines = [f"corpus {stats['corpus']} (scheme {stats['scheme']}{emb})",
             " " * label_w + "".join(f"  {n:>{w}}" for n, w in zip(names, widths))]
    for (label, _), row in zip(rows, cells):
        lines.append(f"{label:<{label_w}}" + "".join(f"  {c:>{w}}" for c, w in zip(row, widths)))
    return "\n".join(lines)
