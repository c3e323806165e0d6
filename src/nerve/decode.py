"""Decode raw input with a trained run: CoNLL files keep every line and gain a tag column; text gets word/TAG;
NCRF++ decode configs write NCRF++'s own output (n-best included)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerve.data.conll import DOCSTART, looks_like_conll, read_conll, read_text
from nerve.errors import NerveError
from nerve.io import atomic_write_text

MAX_NBEST = 100  # n-best Viterbi holds batch x length x tags x n scores
STDIN = "<stdin>"


@dataclass(frozen=True)
class Decoded:
    """What decoding an input produced: its sentences, the 1-best tags and (n-best) paths with scores."""

    sentences: list  # nerve.data.conll.Sentence, in input order
    conll: bool  # the input was read as CoNLL columns (else plain text)
    tags: list[list[str]]  # (n_sentences,) of (length,) 1-best tags
    nbest: list[list[tuple[list[str], float]]] | None  # per sentence: legal paths (tags, score), best first
    n: int = 1  # the n of n-best asked for


def decode_file(run_dir: str, input_path: str, out_path: str, nbest: int | None = None, fmt: str = "auto",
                device: str = "cpu") -> int:
    """Tag ``input_path`` (``-``: standard input) and write ``out_path`` (``-``: standard output); with ``nbest``
    > 1 also ``out_path``.nbest.jsonl. ``nbest`` None takes the run's ``train.nbest`` (1 for standard output).
    Returns the sentence count."""
    if out_path == "-":
        if nbest is not None and nbest > 1:
            raise NerveError("--nbest with --out -: the n-best paths go to OUT.nbest.jsonl; give --out a file")
        nbest = 1  # standard output holds the 1-best tags only
    with _readable(input_path) as path:
        res = decode(run_dir, path, nbest, fmt, device)
        text = conll_output(path, res) if res.conll else text_output(res)
    _write(out_path, text)
    if res.n > 1:
        lines = [json.dumps({"sentence": i, "words": s.words,
                             "nbest": [{"rank": r + 1, "score": sc, "tags": tags}
                                       for r, (tags, sc) in enumerate(alts)]})
                 for i, (s, alts) in enumerate(zip(res.sentences, res.nbest))]
        atomic_write_text(str(out_path) + ".nbest.jsonl", "\n".join(lines) + "\n")
    return len(res.sentences)


def decode(run_dir: str, input_path: str, nbest: int | None = None, fmt: str = "auto",
           device: str = "cpu") -> Decoded:
    """Read ``input_path`` and tag it with the run in ``run_dir`` (1-best, and n-best when ``nbest`` > 1)."""
    from nerve.model.crf import FORBIDDEN
    from nerve.run import load_run, predict

    run = load_run(run_dir, device)
    if nbest is None:
        nbest = run.cfg.train.nbest if run.model.crf is not None else 1
    if not 1 <= nbest <= MAX_NBEST:
        raise NerveError(f"--nbest {nbest}: expected a number in 1..{MAX_NBEST}")
    if nbest > 1 and run.model.crf is None:
        raise NerveError(f"nbest {nbest} needs a CRF model ({run_dir} uses softmax)")
    if not Path(input_path).is_file():
        raise NerveError(f"{input_path}: no such input file")
    conll = fmt == "conll" or (fmt == "auto" and looks_like_conll(input_path))
    sents = read_conll(input_path, labelled=True, min_columns=1) if conll else read_text(input_path)
    enc = run.indexer()
    items = [enc.encode(s, labelled=False, allow_extra=True, path=input_path, tag_column=conll) for s in sents]
    res = predict(run.model, items, enc.extra_vectors(), run.cfg.train.eval_batch_size, run.device, nbest=nbest)
    pred, nb = res if nbest > 1 else (res, None)
    itos = run.vocabs.tags.itos
    alts = None
    if nb is not None:
        alts = [[] if not s.words else [([itos[t] for t in path], float(sc))
                                        for path, sc in zip(paths, scores) if sc > FORBIDDEN / 2]
                for s, (paths, scores) in zip(sents, nb)]
    return Decoded(sents, conll, [[itos[t] for t in p] for p in pred], alts, nbest)


def conll_output(path: str, res: Decoded) -> str:
    """Every line of the CoNLL input, in order: token lines gain the predicted tag, ``-DOCSTART-`` lines an
    ``O``, blank lines stay blank (so the output is line-aligned with the input)."""
    from nerve.data.conll import _decode
    from nerve.text import columns, split_lines

    tags = iter(t for s in res.tags for t in s)
    out = []
    for line in split_lines(_decode(Path(path))):
        fields = columns(line)
        if not fields:
            out.append("")
        elif fields[0] == DOCSTART:
            out.append(" ".join(fields + ["O"]))
        else:
            out.append(" ".join(fields + [next(tags)]))
    return "\n".join(out) + "\n"


def text_output(res: Decoded) -> str:
    """One line per input line: ``word/TAG`` tokens."""
    return "".join(" ".join(f"{w}/{t}" for w, t in zip(s.words, tags)) + "\n"
                   for s, tags in zip(res.sentences, res.tags))


def ncrfpp_output(res: Decoded, nbest: int | None) -> str:
    """NCRF++'s decode file: ``word tag`` lines; with ``nbest`` a ``# p1 p2 ...`` line of the paths'
    probabilities among the n best (softmax of their scores, NCRF++'s ``path_score``) and one tag column per
    path (a sentence with fewer legal paths than n gets fewer columns)."""
    blocks = []
    for i, s in enumerate(res.sentences):
        if nbest is None:
            blocks.append("".join(f"{w} {t}\n" for w, t in zip(s.words, res.tags[i])))
            continue
        alts = res.nbest[i] if res.nbest is not None else [(res.tags[i], 0.0)]
        if not alts:
            alts = [(res.tags[i], 0.0)]
        scores = np.array([sc for _, sc in alts])
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        head = "# " + " ".join(format(p, ".4f") for p in probs) + "\n"
        body = "".join(" ".join([w] + [tags[j] for tags, _ in alts]) + "\n" for j, w in enumerate(s.words))
        blocks.append(head + body)
    return "\n".join(blocks) + ("\n" if blocks else "")


@contextmanager
def _readable(input_path: str):
    """The input as a file path; ``-`` copies standard input into a temporary file, named <stdin> in errors."""
    if input_path != "-":
        yield input_path
        return
    fd, tmp = tempfile.mkstemp(prefix="nerve-stdin-", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(sys.stdin.buffer.read())
        try:
            yield tmp
        except NerveError as err:
            raise NerveError(str(err).replace(tmp, STDIN)) from None
    finally:
        os.unlink(tmp)


def _write(out_path: str, text: str) -> None:
    if out_path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(out_path, text)
