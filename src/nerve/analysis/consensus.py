"""Each ranking method's agreement with the vote of the other methods, per tag (Fan, Dalvi, Durrani & Sajjad,
NeurIPS 2023, "Evaluating neuron interpretation methods of NLP models": neurons that several methods rank high
are taken to matter more; a method is judged by how well it agrees with the others' vote).

The vote is a Borda count, as in the paper's code (``combine_rankings`` of ``neuron_vote.py`` in
github.com/fdalvi/neuron-comparative-analysis, the "NeuronVote" score): a unit at position p (0-based) of a
ranking of n units gets n − p points from that ranking, and the consensus orders the units by their points,
most first (ties by unit index, as ``ranking.rank_units``). Over full rankings this is the order of the mean
normalised rank. Two choices differ from the paper's code: the vote is leave-one-out (method m's own ranking
never enters the consensus it is compared with: there, every method votes, itself included), and it counts every
unit's position, not only each method's top 100.

Pure functions on {method: (T, n) rankings} (``ranking.rank_units`` of a method's (n, T) scores), with an
optional validity mask per method: a method cannot rank a tag whose scores are all NaN (``heldout.unranked``:
no token of it in the ranking split); such a ranking neither votes nor is judged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.judging import dicts_csv
from nerve.io import atomic_write_text

CONSENSUS_K = (1, 5, 10, 20)
CONSENSUS_FIELDS = ("method", "target_tag", "k", "n_voters", "overlap", "jaccard", "avg_jaccard", "spearman")


def valid_tags(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{method: bool (T,)}: the tags a method ranks, those whose (n, T) score column is not all NaN
    (``heldout.method_score_matrices`` gives NaN columns to the tags it cannot rank)."""
    return {m: ~np.isnan(np.asarray(s, dtype=np.float64)).all(axis=0) for m, s in scores.items()}


def borda_points(rankings: Sequence[np.ndarray]) -> np.ndarray:
    """int64 (n,): each unit's Borda points over ``rankings`` (each an (n,) permutation of the units, most
    important first): n − position, summed."""
    n = len(rankings[0])
    points = np.zeros(n, dtype=np.int64)
    for r in rankings:
        points[np.asarray(r)] += np.arange(n, 0, -1)  # shape: (n,)
    return points


def consensus_ranking(rankings: Sequence[np.ndarray]) -> np.ndarray:
    """intp (n,): the units by Borda points over ``rankings`` (``borda_points``), most first, ties by unit index."""
    return np.argsort(-borda_points(rankings), kind="stable")


def positions(ranking: np.ndarray) -> np.ndarray:
    """intp (n,): each unit's position (0 = first) in an (n,) ranking."""
    out = np.empty(len(ranking), dtype=np.intp)
    out[np.asarray(ranking)] = np.arange(len(ranking))
    return out


def rank_spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two (n,) rankings of the same units (no ties: 1 − 6 Σ d² / (n (n² − 1)),
    d the difference of a unit's positions); None for fewer than 2 units."""
    n = len(a)
    if n < 2:
        return None
    d = (positions(a) - positions(b)).astype(np.float64)  # shape: (n,)
    return float(1.0 - 6.0 * (d @ d) / (n * (n * n - 1.0)))


def _top(ranking: np.ndarray, k: int) -> set[int]:
    return set(np.asarray(ranking[:k]).tolist())


def _checked(rankings: Mapping[str, np.ndarray], tags: Sequence[str],
             valid: Mapping[str, np.ndarray] | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    R = {m: np.asarray(r) for m, r in rankings.items()}
    shapes = {r.shape for r in R.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != len(tags):
        raise AnalysisInputError(f"consensus: expected every method's rankings of shape ({len(tags)}, n), got "
                                 + ", ".join(f"{m} {r.shape}" for m, r in R.items()))
    n = next(iter(shapes))[1]
    for m, r in R.items():
        if not (np.sort(r, axis=1) == np.arange(n)).all():
            raise AnalysisInputError(f"consensus: {m}'s rankings are not permutations of the {n} units")
    V = {m: np.ones(len(tags), dtype=bool) if valid is None or m not in valid else np.asarray(valid[m], dtype=bool)
         for m in R}
    bad = [m for m, v in V.items() if v.shape != (len(tags),)]
    if bad:
        raise AnalysisInputError(f"consensus: {bad[0]}'s validity mask: expected shape ({len(tags)},)")
    return R, V


def consensus_rows(rankings: Mapping[str, np.ndarray], tags: Sequence[str], ks: Sequence[int] = CONSENSUS_K,
                   valid: Mapping[str, np.ndarray] | None = None) -> list[dict]:
    """Per method m, tag z and k (those of ``ks`` ≤ n): m's agreement with the Borda consensus of the other
    methods that rank z (the voters), in the module's sense.

    Args:
        rankings: {method: intp (T, n)}, row z the units for tag z, most important first (``rank_units``).
        tags: (T,) tag names.
        ks: the top-k sizes compared.
        valid: {method: bool (T,)}, the tags each method ranks (``valid_tags``); a method absent, or None:
            every tag. A tag m does not rank gives m no row and no vote.

    Returns:
        one dict per (method, tag, k), fields ``CONSENSUS_FIELDS``, for every method and tag with at least one
        other voter: ``n_voters`` the other methods that voted; ``overlap`` |top_k(m) ∩ top_k(C)| / k, C the
        consensus; ``jaccard`` |top_k(m) ∩ top_k(C)| / |top_k(m) ∪ top_k(C)| (the paper's NeuronVote score);
        ``avg_jaccard`` the mean over the voters o of |top_k(m) ∩ top_k(o)| / |top_k(m) ∪ top_k(o)| (the paper's
        AvgOverlap, leave-one-out); ``spearman`` the rank correlation of m's whole ranking with C (the same for
        every k; None with fewer than 2 units).

    Raises:
        AnalysisInputError: rankings of differing shapes, not (T, n), or rows that are not permutations.
    """
    R, V = _checked(rankings, tags, valid)
    n = next(iter(R.values())).shape[1]
    ks = [int(k) for k in ks if 1 <= k <= n]
    out = []
    for m in R:
        for z, tag in enumerate(tags):
            voters = [o for o in R if o != m and V[o][z]]
            if not V[m][z] or not voters:
                continue
            mine = R[m][z]  # shape: (n,)
            consensus = consensus_ranking([R[o][z] for o in voters])  # shape: (n,)
            rho = rank_spearman(mine, consensus)
            for k in ks:
                top, vote = _top(mine, k), _top(consensus, k)
                pairs = [len(top & _top(R[o][z], k)) / len(top | _top(R[o][z], k)) for o in voters]
                out.append({"method": m, "target_tag": str(tag), "k": k, "n_voters": len(voters),
                            "overlap": len(top & vote) / k, "jaccard": len(top & vote) / len(top | vote),
                            "avg_jaccard": float(np.mean(pairs)), "spearman": rho})
    return out


def consensus_csv(rows: list[dict]) -> str:
    """Text of ``consensus.csv``: header ``CONSENSUS_FIELDS``, one line per ``consensus_rows`` row."""
    return dicts_csv(rows, CONSENSUS_FIELDS)


def write_consensus_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write ``consensus_csv(rows)`` to ``path`` atomically."""
    atomic_write_text(path, consensus_csv(rows))
