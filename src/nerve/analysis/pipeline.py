"""The whole neuron analysis of one activations archive (Xin, Lin & Yu, EMNLP 2019), written to a folder."""

from __future__ import annotations

import csv
import io
import math
import os
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerve.analysis.ablation import Sweep, ablation_sweep_counts, write_ablation_csv
from nerve.analysis.checks import AnalysisInputError, check_activations
from nerve.analysis.core import AnalysisSpec
from nerve.analysis.ranking import rank_units, write_ranking_tsv, write_ranking_txt
from nerve.analysis.sensitivity import sensitivity
from nerve.analysis.sentence_counts import SENTENCES, write_sentence_counts
from nerve.errors import NerveError
from nerve.io import atomic_save, atomic_write_json, atomic_write_text, make_dirs
from nerve.metrics import ChunkScorer

SUMMARY_K = 10
SUMMARY_FIELDS = ("target_tag", "k", "baseline", "top_accuracy", "top_drop", "bottom_drop", "random_mean_drop",
                  "random_p2_5_drop", "random_p97_5_drop", "n_draws")


def load_activations(path: str | os.PathLike) -> dict:
    """The arrays of an ``activations.npz`` as a dict (no pickles).

    Raises:
        NerveError: missing, empty, truncated or not an npz archive (the path named).
    """
    p = Path(path)
    if not p.is_file():
        raise NerveError(f"{p}: no such activations archive (expected the activations.npz of `nerve analyze`)")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        raise NerveError(f"{p}: cannot be read as an npz archive ({type(err).__name__}); the file is empty, "
                         "truncated or not an activations archive — re-run `nerve analyze`") from None


def _none_if_nan(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def accuracy_report(gold: np.ndarray, pred: np.ndarray, tags: list[str], sentence_starts: np.ndarray) -> dict:
    """Content of per_tag_accuracy.json for the archived predictions.

    Returns:
        {"per_tag": {tag: accuracy or None}, "support": {tag: n gold tokens}, "ALL": token accuracy,
         "F1", "precision", "recall": conlleval entity scores as fractions}.
    """
    from nerve.analysis.ablation import per_tag_accuracy_arrays

    per_tag, overall = per_tag_accuracy_arrays(gold, pred, len(tags))
    support = np.bincount(gold, minlength=len(tags))
    p, r, f = ChunkScorer(tags, gold, sentence_starts).prf(pred)
    return {
        "per_tag": {t: _none_if_nan(float(a)) for t, a in zip(tags, per_tag)},
        "support": {t: int(c) for t, c in zip(tags, support)},
        "ALL": _none_if_nan(float(overall)),
        "F1": f,
        "precision": p,
        "recall": r,
    }


ACTIVATIONS = "activations.npz"
SUMMARY = "analysis.json"
TABLES = ["sensitivity.csv", "sensitivity.npy", "ranking.tsv", "ranking.txt", "per_tag_accuracy.json",
          "ablation.csv", "ablation_summary.csv"]


def save_activations(path: str | os.PathLike, arrays: dict) -> None:
    """Write an activations archive (compressed npz) atomically."""
    atomic_save(path, lambda buf: np.savez_compressed(buf, **arrays))


@dataclass(frozen=True)
class Analysis:
    """What the analysis of one activations archive found (the tables' content, for the figures and callers).

    s: (n, T) sensitivities; rankings: (T, n) unit indices, most important first; rows: the ablation sweep
    (``ablation_sweep``); accuracy: per_tag_accuracy.json's content; summary: the JSON-ready summary
    (``analyze``'s Returns)."""

    tags: list[str]
    neurons: list[str]
    s: np.ndarray
    rankings: np.ndarray
    rows: np.ndarray
    accuracy: dict
    summary: dict


def summarise_ablation(rows: np.ndarray, k: int) -> list[dict]:
    """Accuracy drop of each target tag (on its own tokens) after ablating k units.

    Drop = accuracy at k = 0 minus accuracy at k (positive: ablation hurts). Random
    statistics are over draws: mean and the 2.5 / 97.5 percentiles (linear interpolation).

    Args:
        rows: structured array from ``ablation_sweep`` or ``read_ablation_csv``.
        k: number of ablated units; must occur in rows.

    Returns:
        One dict per target tag (first-appearance order) with keys target_tag, k, baseline,
        top_accuracy, top_drop, bottom_drop, random_mean_drop, random_p2_5_drop,
        random_p97_5_drop, n_draws (NaN where undefined).

    Raises:
        ValueError: if no row has this k.
    """
    if not np.any(rows["k"] == k):
        raise AnalysisInputError(f"k: expected one of the ablated sizes {sorted(set(rows['k'].tolist()))}, got {k}")
    own = rows[rows["eval_tag"] == rows["target_tag"]]
    out = []
    for tag in dict.fromkeys(own["target_tag"].tolist()):
        t = own[own["target_tag"] == tag]

        def acc(sel: str, kk: int, t: np.ndarray = t) -> np.ndarray:
            return t["accuracy"][(t["selection"] == sel) & (t["k"] == kk)]

        top0, topk, bot = acc("top", 0), acc("top", k), acc("bottom", k)
        base = float(top0[0]) if top0.size else float("nan")
        rnd = acc("random", 0) - acc("random", k)  # draws in the same order at both k
        out.append({
            "target_tag": tag, "k": int(k), "baseline": base,
            "top_accuracy": float(topk[0]) if topk.size else float("nan"),
            "top_drop": base - float(topk[0]) if topk.size else float("nan"),
            "bottom_drop": base - float(bot[0]) if bot.size else float("nan"),
            "random_mean_drop": float(np.mean(rnd)) if rnd.size else float("nan"),
            "random_p2_5_drop": float(np.percentile(rnd, 2.5)) if rnd.size else float("nan"),
            "random_p97_5_drop": float(np.percentile(rnd, 97.5)) if rnd.size else float("nan"),
            "n_draws": int(rnd.size),
        })
    return out


def analyze(arrays: dict, out_dir: str | os.PathLike, spec: AnalysisSpec, progress: bool = True) -> Analysis:
    """Sensitivity, rankings, accuracies and ablation sweep of one model (Xin, Lin & Yu 2019), as tables.

    Writes into ``out_dir`` (created; every file atomically): sensitivity.csv, sensitivity.npy
    ((n, n_tags) float64), ranking.tsv, ranking.txt, per_tag_accuracy.json, ablation.csv,
    ablation_sentences.npz (per-sentence counts at k = 0 and at the ks the ablation findings judge, for their
    bootstrap over sentences: ``sentence_counts.write_sentence_counts``; absent when max_k is 0) and
    ablation_summary.csv (at k = min(10, max_k)). The figures are the report's (``nerve.report.plots``).

    Args:
        arrays: the activations archive (keys h, gold, pred, tags, W, b, neurons,
            sentence_starts, decoder, and crf_start, crf_transitions, crf_end for CRF models).
        out_dir: output folder.
        spec: its bucket ("predicted" or "gold" labels of the sensitivity), max_k (largest ablation size, default
            every unit), random_draws and seed (the random baseline).
        progress: show a progress bar during the sweep.

    Returns:
        ``Analysis`` whose summary is a dict: out_dir, files, n_tokens, n_units, tags, bucket, decoder,
        max_k, random_draws, seed, accuracy (per_tag_accuracy.json content), summary_k, summary
        (ablation_summary rows), seconds.

    Raises:
        ValueError (AnalysisInputError): inconsistent arrays; NerveError: max_k above the number of units.
    """
    t0 = time.perf_counter()
    d = check_activations(arrays)
    n_tokens, n = d.h.shape
    if n_tokens == 0:
        raise AnalysisInputError("h: expected at least one token, got 0")
    max_k, bucket = spec.bound_max_k(n), spec.bucket
    out = make_dirs(out_dir)
    tags, neurons = d.tags, d.neurons

    s = sensitivity(d.h, d.W, d.pred if bucket == "predicted" else d.gold)
    rankings = rank_units(s)
    atomic_write_text(out / "sensitivity.csv", _csv_text(
        ["neuron", *tags], ([u, *(f"{v:.9g}" for v in s[i])] for i, u in enumerate(neurons))))
    atomic_save(out / "sensitivity.npy", lambda p: np.save(p, s), suffix=".npy")
    write_ranking_tsv(out / "ranking.tsv", s, rankings, tags, neurons)
    write_ranking_txt(out / "ranking.txt", rankings, tags, neurons)
    accuracy = accuracy_report(d.gold, d.pred, tags, d.sentence_starts)
    atomic_write_json(out / "per_tag_accuracy.json", accuracy)

    from nerve.analysis.findings_ablation import judged_ks

    rows, counts = ablation_sweep_counts(d, rankings, Sweep(max_k, spec.random_draws, spec.seed), judged_ks(max_k),
                                         progress)
    write_ablation_csv(out / "ablation.csv", rows)
    files = list(TABLES)
    if counts is not None:
        write_sentence_counts(out / SENTENCES, {"zero": counts})
        files.insert(files.index("ablation.csv") + 1, SENTENCES)
    summary_k = min(SUMMARY_K, max_k)
    summary = summarise_ablation(rows, summary_k)
    atomic_write_text(out / "ablation_summary.csv", _csv_text(
        SUMMARY_FIELDS, ([r[f] if isinstance(r[f], (str, int)) else f"{r[f]:.9g}" for f in SUMMARY_FIELDS]
                         for r in summary)))
    result = {
        "out_dir": str(out), "files": files, "n_tokens": int(n_tokens), "n_units": int(n), "tags": tags,
        "bucket": bucket, "decoder": d.decoder, "max_k": int(max_k), "random_draws": int(spec.random_draws),
        "seed": int(spec.seed), "accuracy": accuracy, "summary_k": int(summary_k), "summary": summary,
        "seconds": time.perf_counter() - t0,
    }
    return Analysis(tags, neurons, s, rankings, rows, accuracy, result)
