"""The whole neuron analysis of one activations archive (Xin, Lin & Yu, EMNLP 2019), written to a folder."""

from __future__ import annotations

import csv
import io
import math
import os
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerve.analysis.ablation import ablation_sweep, summarise_ablation, write_ablation_csv
from nerve.analysis.checks import AnalysisInputError, check_activations
from nerve.analysis.ranking import rank_units, write_ranking_tsv, write_ranking_txt
from nerve.analysis.sensitivity import sensitivity
from nerve.errors import NerveError
from nerve.io import atomic_save, atomic_write_json, atomic_write_text, make_dirs
from nerve.metrics import ChunkScorer

BUCKETS = ("predicted", "gold")
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


FIGURES = ("png", "svg")  # the figure formats of an analysis unless told otherwise


def analysis_options(bucket: str, max_k: int | None, random_draws: int, seed: int, cluster: bool,
                     figures: Sequence[str] = FIGURES) -> dict:
    """The options that change an analysis' outputs (part of its fingerprint); ``figures``: the formats its
    figures were drawn in (none: tables only)."""
    return {"bucket": bucket, "max_k": max_k, "random_draws": int(random_draws), "seed": int(seed),
            "cluster": bool(cluster), "figures": list(figures)}


def analyze(arrays: dict, out_dir: str | os.PathLike, *, bucket: str = "predicted", max_k: int | None = None,
            random_draws: int = 20, seed: int = 0, progress: bool = True) -> Analysis:
    """Sensitivity, rankings, accuracies and ablation sweep of one model (Xin, Lin & Yu 2019), as tables.

    Writes into ``out_dir`` (created; every file atomically): sensitivity.csv, sensitivity.npy
    ((n, n_tags) float64), ranking.tsv, ranking.txt, per_tag_accuracy.json, ablation.csv and
    ablation_summary.csv (at k = min(10, max_k)). The figures are the report's (``nerve.report.plots``).

    Args:
        arrays: the activations archive (keys h, gold, pred, tags, W, b, neurons,
            sentence_starts, decoder, and crf_start, crf_transitions, crf_end for CRF models).
        out_dir: output folder.
        bucket: "predicted" (sensitivity over predicted labels) or "gold".
        max_k: largest ablation size, 0..n; default n (every unit).
        random_draws: random permutations for the baseline; seed: their seed.
        progress: show a progress bar during the sweep.

    Returns:
        ``Analysis`` whose summary is a dict: out_dir, files, n_tokens, n_units, tags, bucket, decoder,
        max_k, random_draws, seed, accuracy (per_tag_accuracy.json content), summary_k, summary
        (ablation_summary rows), seconds.

    Raises:
        ValueError (AnalysisInputError): inconsistent arrays, unknown bucket, or max_k outside 0..n.
    """
    t0 = time.perf_counter()
    d = check_activations(arrays)
    n_tokens, n = d.h.shape
    if n_tokens == 0:
        raise AnalysisInputError("h: expected at least one token, got 0")
    if bucket not in BUCKETS:
        raise AnalysisInputError(f"bucket: expected one of {', '.join(BUCKETS)}, got {bucket!r}")
    max_k = n if max_k is None else max_k
    if isinstance(max_k, bool) or not isinstance(max_k, (int, np.integer)) or not 0 <= max_k <= n:
        raise AnalysisInputError(f"max_k: expected an integer in 0..{n} (number of units), got {max_k!r}")
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

    rows = ablation_sweep(d.h, d.W, d.b, d.gold, d.sentence_starts, tags, rankings, max_k,
                          random_draws=random_draws, seed=seed, crf=d.crf, progress=progress)
    write_ablation_csv(out / "ablation.csv", rows)
    summary_k = min(SUMMARY_K, max_k)
    summary = summarise_ablation(rows, summary_k)
    atomic_write_text(out / "ablation_summary.csv", _csv_text(
        SUMMARY_FIELDS, ([r[f] if isinstance(r[f], (str, int)) else f"{r[f]:.9g}" for f in SUMMARY_FIELDS]
                         for r in summary)))
    result = {
        "out_dir": str(out), "files": list(TABLES), "n_tokens": int(n_tokens), "n_units": int(n), "tags": tags,
        "bucket": bucket, "decoder": d.decoder, "max_k": int(max_k), "random_draws": int(random_draws),
        "seed": int(seed), "accuracy": accuracy, "summary_k": int(summary_k), "summary": summary,
        "seconds": time.perf_counter() - t0,
    }
    return Analysis(tags, neurons, s, rankings, rows, accuracy, result)
