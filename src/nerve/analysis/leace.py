"""LEACE (Belrose et al. 2023, the ``concept-erasure`` package): per tag z, the smallest linear edit of the site that
removes z's linear information, fitted on the ranking split — the bases' supervised reference (issue 33).

For each tag z with tokens in the ranking split, ``LeaceEraser.fit(h, 1[label = z])`` gives the edit
h′ = h − ((h − μ)·Rᵀ)·Lᵀ (rank 1: the concept is one binary column); the scoring split is decoded with h′ (the
emissions h′·Wᵀ + b, argmax or the CRF's Viterbi) and scored as the sweeps are (``ablation.eval_tags``). Own drop,
the other tags' mean drop and selectivity are those of ``judging.judge_methods``, at one edit of rank 1.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from nerve.analysis.ablation import SCORES, score_predictions
from nerve.analysis.checks import Activations
from nerve.analysis.decoders import decode_emissions
from nerve.analysis.methods import RankInput
from nerve.io import atomic_write_text

LEACE_FIELDS = ("erased_tag", "eval_tag", *SCORES)
LEACE_SUMMARY_FIELDS = ("erased_tag", "score", "edit_rank", "baseline", "own_drop", "others_mean_drop", "selectivity")
NONE = "none"  # the erased tag of the unedited rows


def leace_eraser(h: np.ndarray, labels: np.ndarray, z: int):
    """The package's ``LeaceEraser`` of tag z's indicator on the (N, n) activations (float64)."""
    import torch
    from concept_erasure import LeaceEraser

    x = torch.as_tensor(np.asarray(h, np.float64))
    concept = torch.as_tensor((np.asarray(labels) == z).astype(np.float64))[:, None]  # shape: (N, 1)
    return LeaceEraser.fit(x, concept)


def erase(eraser, h: np.ndarray) -> np.ndarray:
    """float64 (N, n): the eraser applied to (N, n) activations (the package's own call)."""
    import torch

    return eraser(torch.as_tensor(np.asarray(h, np.float64))).numpy()


def leace_rows(rank: RankInput, score: Activations) -> tuple[list[str], list[str], np.ndarray]:
    """(erased tags, eval tags, float64 (E, n_eval, 4) scores): the unedited split first (erased tag ``none``),
    then each tag with tokens in the ranking split erased."""
    tags = list(score.tags)
    W = np.asarray(score.W, np.float64)
    b = np.asarray(score.b, np.float64)
    h = np.asarray(score.h, np.float64)
    erased = [NONE]
    preds = [decode_emissions(h @ W.T + b, score)]
    counts = np.bincount(np.asarray(rank.labels, np.intp), minlength=len(tags))
    for z, tag in enumerate(tags):
        if counts[z] == 0 or counts[z] == len(rank.labels):
            continue
        erased.append(tag)
        preds.append(decode_emissions(erase(leace_eraser(rank.h, rank.labels, z), h) @ W.T + b, score))
    names, table = score_predictions(np.stack(preds), score)
    return erased, names, table


def leace_summary(erased: list[str], names: list[str], table: np.ndarray, tags: list[str]) -> list[dict]:
    """Per erased tag and score (accuracy = recall, f1): the baseline, own drop, others' mean drop, selectivity."""
    out = []
    for e, tag in enumerate(erased[1:], start=1):
        for s, col in (("accuracy", 0), ("f1", 3)):
            base, after = table[0, :, col], table[e, :, col]
            own = float(base[names.index(tag)] - after[names.index(tag)])
            others = [float(base[names.index(t)] - after[names.index(t)]) for t in tags
                      if t != tag and not np.isnan(base[names.index(t)])]
            mean = float(np.mean(others)) if others else float("nan")
            out.append({"erased_tag": tag, "score": s, "edit_rank": 1, "baseline": float(base[names.index(tag)]),
                        "own_drop": own, "others_mean_drop": mean, "selectivity": own - mean})
    return out


def write_leace(out: str | os.PathLike, rank: RankInput, score: Activations) -> list[str]:
    """Write leace.csv (every erased tag × eval tag) and leace_summary.csv; return their names."""
    erased, names, table = leace_rows(rank, score)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LEACE_FIELDS)
    for e, tag in enumerate(erased):
        for i, name in enumerate(names):
            w.writerow([tag, name, *(f"{v:.9g}" for v in table[e, i])])
    atomic_write_text(os.path.join(out, "leace.csv"), buf.getvalue())
    buf = io.StringIO()
    w = csv.DictWriter(buf, LEACE_SUMMARY_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in leace_summary(erased, names, table, list(score.tags)):
        w.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(os.path.join(out, "leace_summary.csv"), buf.getvalue())
    return ["leace.csv", "leace_summary.csv"]
