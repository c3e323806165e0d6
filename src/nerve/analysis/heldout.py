"""Ranking methods judged by ablation on held-out data: rank on one split, ablate and score on another."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nerve.analysis.ablation import FIELDS, SCORES, ablation_sweep, row_dtype
from nerve.analysis.checks import Activations, AnalysisInputError
from nerve.analysis.methods import METHODS, RankInput, method_scores
from nerve.analysis.ranking import rank_units
from nerve.analysis.tables import read_csv_columns, structured_csv, text_width
from nerve.io import atomic_save, atomic_write_text

ABLATIONS = ("zero", "mean")
RANDOM = "random"  # the method whose rows are the random draws (the baseline), selection "random"
METHOD_FIELDS = ("method", "ablate", "rank_split", "score_split", *FIELDS)


def rank_input(acts: Activations, bucket: str = "predicted") -> RankInput:
    """What the ranking methods read of one split's activations (labels: predictions or gold by ``bucket``)."""
    return RankInput(acts.h, acts.pred if bucket == "predicted" else acts.gold, acts.W, len(acts.tags), acts.b,
                     acts.crf, acts.sentence_starts)


def default_target(rank: RankInput) -> str:
    """The attribution methods' token score: the CRF marginal for CRF taggers, else the log-probability."""
    return "marginal" if rank.crf is not None else "logprob"


def method_score_matrices(rank: RankInput, methods: Sequence[str], seed: int = 0,
                          target: str | None = None) -> dict[str, np.ndarray]:
    """Per method (``RANDOM`` excluded: its rows are random draws), the (n, T) scores from ``rank`` only;
    ``target``: the attribution methods' token score ("logprob" softmax, "marginal" or "logit" CRF; default
    ``default_target``)."""
    target = target or default_target(rank)
    return {m: method_scores(m, rank, seed, target) for m in methods if m != RANDOM}


def method_rankings(rank: RankInput, methods: Sequence[str], seed: int = 0,
                    target: str | None = None) -> dict[str, np.ndarray]:
    """Per method (``RANDOM`` excluded), the (T, n) rankings from ``rank`` only (``method_score_matrices``)."""
    return {m: rank_units(s) for m, s in method_score_matrices(rank, methods, seed, target).items()}


def write_method_scores(path: str | os.PathLike, scores: Mapping[str, np.ndarray],
                        rankings: Mapping[str, np.ndarray], tags: Sequence[str], neurons: Sequence[str],
                        rank_split: str, target: str) -> None:
    """``methods_scores.npz``, loadable with ``numpy.load``: methods (M,), tags (T,), neurons (n,), scores float64
    (M, n, T), rankings intp (M, T, n) (each tag's units, most important first: ``rank_units`` of the scores),
    rank_split and target (the attribution methods' token score) as 0-d strings."""
    names = list(scores)
    S = np.stack([np.asarray(scores[m], dtype=np.float64) for m in names])
    R = np.stack([np.asarray(rankings[m]) for m in names])
    arrays = {"methods": np.array(names), "tags": np.array(list(tags)), "neurons": np.array(list(neurons)),
              "scores": S, "rankings": R, "rank_split": np.array(rank_split), "target": np.array(target)}
    atomic_save(path, lambda buf: np.savez_compressed(buf, **arrays))


def read_method_scores(path: str | os.PathLike) -> dict:
    """``methods_scores.npz`` read back: methods, tags, neurons (lists of str), scores {method: (n, T)},
    rankings {method: (T, n)}, rank_split, target."""
    with np.load(path, allow_pickle=False) as z:
        names = [str(m) for m in z["methods"]]
        return {"methods": names, "tags": [str(t) for t in z["tags"]], "neurons": [str(u) for u in z["neurons"]],
                "scores": {m: z["scores"][i] for i, m in enumerate(names)},
                "rankings": {m: z["rankings"][i] for i, m in enumerate(names)},
                "rank_split": str(z["rank_split"]), "target": str(z["target"])}


def method_sweeps(rank: RankInput, score: Activations, methods: Sequence[str], *, max_k: int,
                  ablations: Sequence[str] = ("zero",), random_draws: int = 20, seed: int = 0,
                  rank_split: str = "dev", score_split: str = "dev", progress: bool = False,
                  rankings: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Top-k ablation sweeps of every method's ranking, and the random draws, for each ablation value.

    The rankings come from ``rank`` (the ranking split) alone; the sweeps run on ``score`` (the scoring split)
    with the model's own decoder. ``mean`` ablation sets a unit to its mean over the ranking split's tokens.

    Args:
        rank: the ranking split's unit values and labels (``rank_input``).
        score: the scoring split's activations (gold tags, W, b, CRF).
        methods: names from ``nerve.analysis.methods.METHODS`` and/or ``"random"`` (the random draws).
        max_k: largest number of ablated units; ablations: "zero" and/or "mean"; random_draws, seed: the
            random baseline (``ablation_sweep``'s).
        rankings: the methods' (T, n) rankings when already computed from ``rank`` (default: computed here).

    Returns:
        structured rows, fields ``METHOD_FIELDS``: method, ablate, rank_split, score_split, then the fields of
        ``ablation.csv`` (selection "top" for a method, "random" with draw 0..D-1 for the random draws).
    """
    unknown = [m for m in methods if m not in METHODS and m != RANDOM]
    bad = [a for a in ablations if a not in ABLATIONS]
    if unknown or bad or not methods or not ablations:
        known = ", ".join(dict.fromkeys([*METHODS, RANDOM]))
        raise AnalysisInputError(f"methods {list(methods)}, ablations {list(ablations)}: expected methods from "
                                 f"{known} and ablation values from {', '.join(ABLATIONS)}")
    if rank.h.shape[1] != score.h.shape[1]:
        raise AnalysisInputError(f"rank and score splits have {rank.h.shape[1]} and {score.h.shape[1]} units")
    if rankings is None:
        rankings = method_rankings(rank, methods, seed)
    rankings = {m: rankings[m] for m in methods if m != RANDOM}
    parts = []
    for ablate in ablations:
        values = np.asarray(rank.h, dtype=np.float64).mean(axis=0) if ablate == "mean" else None
        sweep = dict(max_k=max_k, seed=seed, crf=score.crf, progress=progress, values=values)
        args = (score.h, score.W, score.b, score.gold, score.sentence_starts, score.tags)
        for method, ranking in rankings.items():
            parts.append((method, ablate, ablation_sweep(*args, ranking, selections=("top",), **sweep)))
        if RANDOM in methods:
            any_ranking = np.tile(np.arange(score.h.shape[1]), (len(score.tags), 1))
            parts.append((RANDOM, ablate, ablation_sweep(*args, any_ranking, random_draws=random_draws,
                                                         selections=("random",), **sweep)))
    return _label(parts, rank_split, score_split)


def method_dtype(width: int, tag_width: int, ablate_width: int = 4) -> np.dtype:
    """Structured dtype of methods.csv rows (``METHOD_FIELDS``): method and split names of ``width`` characters,
    ablation values of ``ablate_width``, tags of ``tag_width`` (``ablation.row_dtype``)."""
    tags = row_dtype(tag_width)
    return np.dtype([("method", f"U{width}"), ("ablate", f"U{ablate_width}"), ("rank_split", f"U{width}"),
                     ("score_split", f"U{width}"), *[(f, tags[f]) for f in FIELDS]])


def _label(parts, rank_split: str, score_split: str) -> np.ndarray:
    width = max([len(m) for m, _, _ in parts] + [len(rank_split), len(score_split), 6])
    first = parts[0][2].dtype
    dtype = method_dtype(width, text_width(np.empty(0, first["target_tag"])))
    out = np.empty(sum(len(r) for _, _, r in parts), dtype=dtype)
    i = 0
    for method, ablate, rows in parts:
        block = out[i:i + len(rows)]
        block["method"], block["ablate"] = method, ablate
        block["rank_split"], block["score_split"] = rank_split, score_split
        for f in FIELDS:
            block[f] = rows[f]
        i += len(rows)
    return out


def methods_csv(rows: np.ndarray) -> str:
    """Text of ``methods.csv``: header ``METHOD_FIELDS`` then one line per row (the score column is named as in
    ablation.csv: per-tag accuracy for a tag, token accuracy for ALL, entity F1 for F1)."""
    return structured_csv(rows, METHOD_FIELDS)


def write_methods_csv(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write ``methods_csv(rows)`` to ``path`` atomically."""
    atomic_write_text(path, methods_csv(rows))


def read_methods_csv(path: str | os.PathLike) -> np.ndarray:
    """Rows of a ``methods.csv`` as ``method_sweeps`` gives them (``method_dtype``), parsed by pyarrow.

    Raises:
        ValueError (AnalysisInputError): another header, or a line that does not parse, naming the file.
    """
    cols = read_csv_columns(path, METHOD_FIELDS, {"k": np.int32, "draw": np.int32, **dict.fromkeys(SCORES, np.float64)},
                            "a methods.csv")
    width = max([6, *(text_width(cols[f]) for f in ("method", "rank_split", "score_split"))])
    tag_width = max(3, text_width(cols["target_tag"]), text_width(cols["eval_tag"]))
    out = np.empty(len(cols["k"]), dtype=method_dtype(width, tag_width, max(4, text_width(cols["ablate"]))))
    for f in METHOD_FIELDS:
        out[f] = cols[f]
    return out
