"""Decode raw input with a trained run: CoNLL files keep their columns and gain a tag column; text gets word/TAG."""

from __future__ import annotations

import json
from pathlib import Path

from nerve.data.conll import looks_like_conll, read_conll, read_text
from nerve.errors import NerveError
from nerve.io import atomic_write_text

MAX_NBEST = 100  # n-best Viterbi holds batch x length x tags x n scores


def decode_file(run_dir: str, input_path: str, out_path: str, nbest: int = 1, fmt: str = "auto",
                device: str = "cpu") -> int:
    """Tag ``input_path`` and write ``out_path`` (with ``nbest`` > 1 also ``out_path``.nbest.jsonl)."""
    from nerve.model.crf import FORBIDDEN
    from nerve.run import load_run, predict

    if not 1 <= nbest <= MAX_NBEST:
        raise NerveError(f"--nbest {nbest}: expected a number in 1..{MAX_NBEST}")
    run = load_run(run_dir, device)
    if nbest > 1 and run.model.crf is None:
        raise NerveError("--nbest needs a CRF model (this run uses softmax)")
    if not Path(input_path).is_file():
        raise NerveError(f"{input_path}: no such input file")
    conll = fmt == "conll" or (fmt == "auto" and looks_like_conll(input_path))
    sents = read_conll(input_path, labelled=True, min_columns=1) if conll else read_text(input_path)
    enc = run.indexer()
    items = [enc.encode(s, labelled=False, allow_extra=True, path=input_path, tag_column=conll) for s in sents]
    res = predict(run.model, items, enc.extra_vectors(), run.cfg.train.eval_batch_size, run.device, nbest=nbest)
    pred, nb = (res if nbest > 1 else (res, None))
    itos = run.vocabs.tags.itos
    if conll:
        blocks = ["\n".join(" ".join(row + [itos[t]]) for row, t in zip(s.columns, p)) for s, p in zip(sents, pred)]
        text = "\n\n".join(b for b in blocks if b) + "\n"
    else:
        text = "".join(" ".join(f"{w}/{itos[t]}" for w, t in zip(s.words, p)) + "\n" for s, p in zip(sents, pred))
    atomic_write_text(out_path, text)
    if nb is not None:
        lines = []
        for i, (paths, scores) in enumerate(nb):
            alts = [] if not sents[i].words else [  # an empty sentence has no alternatives
                {"rank": r + 1, "score": float(sc), "tags": [itos[t] for t in path]}
                for r, (path, sc) in enumerate(zip(paths, scores)) if sc > FORBIDDEN / 2]  # legal paths only
            lines.append(json.dumps({"sentence": i, "words": sents[i].words, "nbest": alts}))
        atomic_write_text(str(out_path) + ".nbest.jsonl", "\n".join(lines) + "\n")
    return len(sents)
