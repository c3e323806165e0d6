"""The `nerve data` commands: fetch, stats, convert, validate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nerve.errors import NerveError

SCHEME_CHOICES = ("bio", "bioes", "iob1")


def add_data_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``nerve data ...`` on the top-level subparsers; returns the ``data`` parser."""
    p = subparsers.add_parser("data", help="corpora: fetch, statistics, conversion, validation")
    sub = p.add_subparsers(dest="data_command", required=True)

    q = sub.add_parser("fetch", help="download a registered corpus into the cache, verified by SHA-256")
    q.add_argument("name", help="conll2003, mit_movie, nlpba2004 or wnut17")
    q.add_argument("--url", help="mirror base URL serving NAME/FILE (default: $NERVE_MIRROR, else the raw files of "
                                 "github.com/qiuweipku/CSE-517-project at commit 17ae195)")

    q = sub.add_parser("stats", help="sentences, tokens, entities, tags, lengths and embedding coverage")
    q.add_argument("corpus", help="corpus name, corpus folder or one CoNLL file")
    q.add_argument("--data", help="folder of corpora, or the corpus folder itself (default: $NERVE_DATA, then "
                                  "the cache)")
    q.add_argument("--json", action="store_true", help="print the statistics as JSON (default: a table)")
    q.add_argument("--no-embeddings", action="store_true",
                   help="skip GloVe 6B 50d vocabulary coverage (default: report it)")

    q = sub.add_parser("convert", help="convert a CoNLL file's tag scheme and column layout")
    q.add_argument("input", help="CoNLL file to read")
    q.add_argument("output", help="CoNLL file to write")
    q.add_argument("--to", required=True, choices=SCHEME_CHOICES, type=str.lower,
                   help="tag scheme of the output (required)")
    q.add_argument("--from", dest="src", choices=SCHEME_CHOICES, type=str.lower,
                   help="tag scheme of the input (default: detected, BIOES when E-/S- tags occur, else BIO)")
    q.add_argument("--columns", help="input layout, e.g. tag,word or word,pos,chunk,tag (default: word first, "
                                     "tag last); the output is word first, tag last")

    q = sub.add_parser("validate", help="list every format and BIO problem of a corpus, with file and line")
    q.add_argument("corpus", help="corpus name, corpus folder or one CoNLL file")
    q.add_argument("--data", help="folder of corpora, or the corpus folder itself (default: $NERVE_DATA, then "
                                  "the cache)")
    return p


def _corpus_path(corpus: str, data_dir: str | None) -> Path:
    from nerve.data.registry import resolve_corpus

    return Path(corpus) if Path(corpus).is_file() else resolve_corpus(corpus, data_dir)


def _fetch(args) -> int:
    from nerve.data.registry import fetch

    path = fetch(args.name, url=args.url)
    print(f"{args.name}: verified -> {path}", file=sys.stderr)
    return 0


def _stats(args) -> int:
    from nerve.data.stats import corpus_stats, format_stats

    path = _corpus_path(args.corpus, args.data)
    pretrained = None
    if not args.no_embeddings:
        from nerve.embeddings import GLOVE_50D, load_pretrained

        try:
            pretrained = load_pretrained(GLOVE_50D)
        except NerveError as err:
            raise NerveError(f"data stats: {err} (or pass --no-embeddings)") from None
    stats = corpus_stats(path, pretrained)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _convert(args) -> int:
    from nerve.data.tools import convert_file

    done = convert_file(args.input, args.output, args.to, src=args.src, columns=args.columns)
    print(f"converted {done['sentences']:,} sentences ({done['tokens']:,} tokens) from {done['from']} to "
          f"{done['to']} -> {args.output}", file=sys.stderr)
    return 0


def _validate(args) -> int:
    from nerve.data.tools import validate_corpus

    path = _corpus_path(args.corpus, args.data)
    problems = validate_corpus(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {path}", file=sys.stderr)
        return 1
    print(f"{path}: no problems")
    return 0


DATA_COMMANDS = {"fetch": _fetch, "stats": _stats, "convert": _convert, "validate": _validate}


def cmd_data(args) -> int:
    """Run one ``nerve data`` command; 1 when ``validate`` finds problems, else 0 (errors raise NerveError)."""
    return DATA_COMMANDS[args.data_command](args)
