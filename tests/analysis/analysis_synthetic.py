"""Synthetic activations archives and brute-force references shared by the analysis tests."""

import numpy as np
import pytest

from nerve.analysis.ablation import Sweep, SweepInput, ablation_sweep, row_dtype
from nerve.analysis.ranking import rank_units
from nerve.analysis.sensitivity import sensitivity

TAGS5 = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]


def make_arrays(n_tokens=200, n=8, tags=TAGS5, n_sentences=12, seed=0, decoder="softmax"):
    """A small archive: h = tanh(normal), W, b normal, gold = model output with 25% random tags."""
    rng = np.random.default_rng(seed)
    h = np.tanh(rng.normal(scale=1.5, size=(n_tokens, n))).astype(np.float32)
    W = rng.normal(size=(len(tags), n)).astype(np.float32)
    b = rng.normal(scale=0.3, size=len(tags)).astype(np.float32)
    pred = (h.astype(np.float64) @ W.T.astype(np.float64) + b).argmax(axis=1)
    gold = np.where(rng.random(n_tokens) < 0.25, rng.integers(0, len(tags), n_tokens), pred)
    cuts = np.sort(rng.choice(np.arange(1, n_tokens), n_sentences - 1, replace=False))
    arrays = {
        "h": h, "gold": gold.astype(np.int64), "pred": pred.astype(np.int64), "tags": np.array(tags),
        "W": W, "b": b, "neurons": np.array([f"u{i}" for i in range(n)]),
        "sentence_starts": np.concatenate([[0], cuts]).astype(np.int64), "decoder": np.array(decoder),
    }
    if decoder == "crf":
        T = len(tags)
        arrays["crf_start"] = rng.normal(size=T).astype(np.float32)
        arrays["crf_transitions"] = rng.normal(size=(T, T)).astype(np.float32)
        arrays["crf_end"] = rng.normal(size=T).astype(np.float32)
    return arrays


def viterbi_loop(em, start, trans, end):
    """Plain per-sentence Viterbi (em: (L, T)), first max on ties."""
    score = start + em[0]
    back = []
    for t in range(1, len(em)):
        cand = score[:, None] + trans  # [from, to]
        back.append(cand.argmax(axis=0))
        score = cand.max(axis=0) + em[t]
    path = [int((score + end).argmax())]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return path[::-1]


def brute_force(arrays, units, crf=False):
    """Scores after zeroing ``units`` in h, by direct recomputation: {eval tag: (accuracy, precision, recall,
    F1)} for every tag (token level, scikit-learn), ALL (token accuracy), F1 and F1:type (entity level,
    seqeval)."""
    tags = [str(t) for t in arrays["tags"]]
    hm = arrays["h"].astype(np.float64)
    hm[:, list(units)] = 0.0
    logits = hm @ arrays["W"].astype(np.float64).T + arrays["b"].astype(np.float64)
    starts = list(arrays["sentence_starts"]) + [len(hm)]
    if crf:
        params = [arrays[k].astype(np.float64) for k in ("crf_start", "crf_transitions", "crf_end")]
        pred = np.concatenate([viterbi_loop(logits[a:z], *params) for a, z in zip(starts[:-1], starts[1:])])
    else:
        pred = logits.argmax(axis=1)
    return reference_scores(arrays["gold"], pred, tags, arrays["sentence_starts"])


def reference_scores(gold, pred, tags, sentence_starts):
    """{eval tag: (accuracy, precision, recall, F1)} of pred against gold (int tag ids, sentences concatenated):
    every tag at token level (scikit-learn), ALL (token accuracy), F1 and F1:type at entity level (seqeval)."""
    from seqeval.metrics import classification_report
    from sklearn.metrics import precision_recall_fscore_support

    gold, pred = np.asarray(gold), np.asarray(pred)
    p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=range(len(tags)), zero_division=np.nan)
    out = {t: (r[j], p[j], r[j], f[j]) for j, t in enumerate(tags)}
    acc = float(np.mean(pred == gold))
    out["ALL"] = (acc,) * 4
    starts = [*list(sentence_starts), len(gold)]
    sents = [(gold[a:z], pred[a:z]) for a, z in zip(starts[:-1], starts[1:])]
    report = classification_report([[tags[i] for i in g] for g, _ in sents],
                                   [[tags[i] for i in q] for _, q in sents], output_dict=True, zero_division=0)
    types = sorted({t[2:] for t in tags if t[:2] in ("B-", "I-", "E-", "S-")})
    for name, key in [("F1", "micro avg"), *[(f"F1:{t}", t) for t in types]]:
        e = report.get(key, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
        out[name] = (e["f1-score"], e["precision"], e["recall"], e["f1-score"])
    return out


def sweep(a, max_k=None, draws=3, seed=0, crf=None):
    rankings = rank_units(sensitivity(a["h"], a["W"], a["pred"]))
    n = a["h"].shape[1]
    data = SweepInput(a["h"], a["W"], a["b"], a["gold"], a["sentence_starts"], list(a["tags"]), crf)
    rows = ablation_sweep(data, rankings, Sweep(n if max_k is None else max_k, draws, seed))
    return rows, rankings


def as_table(rows):
    """{(target, selection, k, draw): {eval_tag: (accuracy, precision, recall, f1)}}."""
    out = {}
    for r in rows:
        out.setdefault((str(r["target_tag"]), str(r["selection"]), int(r["k"]), int(r["draw"])), {})[
            str(r["eval_tag"])] = tuple(float(r[f]) for f in ("accuracy", "precision", "recall", "f1"))
    return out


def assert_scores_equal(got, want):
    assert got.keys() == want.keys()
    for key in want:
        assert np.asarray(got[key]) == pytest.approx(np.asarray(want[key], dtype=float), abs=1e-12, nan_ok=True), key


def ablation_rows(tags, own_drop, other_drop, random_drops, max_k=10, base=0.9):
    """ablation.csv rows: accuracy falls linearly in k to base - drop at max_k (top: own / other tags; random)."""
    evals = list(tags) + ["ALL", "F1"]
    rows = []
    for t in tags:
        for k in range(max_k + 1):
            f = k / max_k if max_k else 0.0
            for e in evals:
                rows.append((t, "top", k, 0, e, base - f * (own_drop if e == t else other_drop)))
            for d, rd in enumerate(random_drops):
                for e in evals:
                    rows.append((t, "random", k, d, e, base - f * (rd if e == t else other_drop)))
    nan = float("nan")  # precision, recall, f1: not read by the findings
    return np.array([(*r, nan, nan, nan) for r in rows], dtype=row_dtype(max(map(len, evals))))
