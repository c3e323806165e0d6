"""Do ranking methods agree? Top-k overlap between methods within a run, and each method's stability across runs
through unit matching (Fan et al., NeurIPS 2023, "Evaluating Neuron Interpretation Methods of NLP Models")."""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Mapping, Sequence

import numpy as np

from nerve.analysis.checks import AnalysisInputError

AGREEMENT_FIELDS = ("method_a", "method_b", "tag", "k", "shared", "chance")
STABILITY_FIELDS = ("method", "tag", "k", "n_pairs", "shared_mean", "shared_sd", "shared_min", "shared_max", "chance")


def top_k_mask(rankings: np.ndarray, k: int) -> np.ndarray:
    """bool (T, n): True where a unit is among the first ``k`` of its tag's ranking.

    Args:
        rankings: intp (T, n), each row a permutation of the units, most important first.
    """
    rankings = np.asarray(rankings)
    if rankings.ndim != 2 or not 0 <= k <= rankings.shape[1]:
        raise AnalysisInputError(f"rankings: expected (T, n) with 0 <= k <= n, got {rankings.shape} and k = {k}")
    mask = np.zeros(rankings.shape, dtype=bool)
    np.put_along_axis(mask, rankings[:, :k], True, axis=1)
    return mask


def chance_overlap(n: int, k: int) -> float:
    """Expected number of shared units between two independent uniformly random k-subsets of n units: k²/n."""
    return k * k / n if n else float("nan")


def method_overlap(rankings: Mapping[str, np.ndarray], k: int) -> tuple[list[str], np.ndarray]:
    """Shared units among the top ``k`` of every two methods, per tag.

    Args:
        rankings: per method, intp (T, n) rankings of one run (same tags, same units).

    Returns:
        (methods, int (M, M, T) shared counts; the diagonal is k).
    """
    names = list(rankings)
    if not names:
        raise AnalysisInputError("rankings: expected at least one method")
    masks = np.stack([top_k_mask(rankings[m], k) for m in names]).astype(np.int64)  # shape: (M, T, n)
    return names, np.einsum("atn,btn->abt", masks, masks)


def agreement_rows(rankings: Mapping[str, np.ndarray], tags: Sequence[str], ks: Sequence[int],
                   valid: Mapping[str, np.ndarray] | None = None) -> list[dict]:
    """One row per unordered method pair, tag and k (those ≤ n): method_a, method_b, tag, k, shared, chance.

    ``valid[m]`` (bool (T,)) marks the tags method m could score (a tag without tokens ranks units by index);
    a pair with an invalid tag gets ``shared`` None.
    """
    names = list(rankings)
    n = np.asarray(rankings[names[0]]).shape[1]
    out = []
    for k in [k for k in ks if 0 < k <= n]:
        _, S = method_overlap(rankings, k)
        for a, b in itertools.combinations(range(len(names)), 2):
            for j, tag in enumerate(tags):
                ok = valid is None or (valid[names[a]][j] and valid[names[b]][j])
                out.append({"method_a": names[a], "method_b": names[b], "tag": tag, "k": int(k),
                            "shared": int(S[a, b, j]) if ok else None, "chance": chance_overlap(n, k)})
    return out


def matched_overlap(rank_a: np.ndarray, rank_b: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int) -> np.ndarray:
    """Per tag, how many of run a's top-k units, mapped to run b by a unit matching, are among run b's top k.

    Args:
        rank_a: intp (T, n_a), rank_b: intp (T, n_b) rankings of one method in two runs, tag rows aligned.
        rows, cols: the matching, unit rows[i] of a is unit cols[i] of b (``matching.assign_units``); an
            unmatched unit of a counts as not shared.

    Returns:
        int (T,) shared counts.
    """
    rank_a, rank_b = np.asarray(rank_a), np.asarray(rank_b)
    if rank_a.shape[0] != rank_b.shape[0]:
        raise AnalysisInputError(f"rank_a, rank_b: expected one number of tags, got {rank_a.shape} and {rank_b.shape}")
    to_b = np.full(rank_a.shape[1], -1, dtype=np.intp)
    to_b[np.asarray(rows, dtype=np.intp)] = np.asarray(cols, dtype=np.intp)
    mapped = to_b[rank_a[:, :k]]  # shape: (T, k)
    in_b = top_k_mask(rank_b, k)
    hit = np.take_along_axis(in_b, np.where(mapped < 0, 0, mapped), axis=1) & (mapped >= 0)
    return hit.sum(axis=1)


def stability_rows(per_run: Sequence[Mapping[str, np.ndarray]], matchings: Mapping[tuple[int, int], tuple],
                   tags: Sequence[str], ks: Sequence[int], n_units: int,
                   valid: Sequence[Mapping[str, np.ndarray]] | None = None) -> list[dict]:
    """Each method's stability across runs: for every pair of runs (a, b) with a matching, the matched top-k
    overlap (``matched_overlap``) per tag; its mean, sample sd, min and max over the pairs, and the chance
    k²/n of a random ranking.

    Args:
        per_run: per run, {method: intp (T, n) rankings}, tag rows in ``tags`` order.
        matchings: {(a, b): (rows, cols)} for run indices a < b.
        valid: per run, {method: bool (T,)} tags the method could score (pairs with an invalid tag are skipped).
    """
    methods = [m for m in per_run[0] if all(m in r for r in per_run)] if per_run else []
    out = []
    for k in [k for k in ks if 0 < k <= n_units]:
        for m in methods:
            shared: list[list[int]] = [[] for _ in tags]
            for (a, b), (rows, cols) in matchings.items():
                counts = matched_overlap(per_run[a][m], per_run[b][m], rows, cols, k)
                for j in range(len(tags)):
                    if valid is None or (valid[a][m][j] and valid[b][m][j]):
                        shared[j].append(int(counts[j]))
            for j, tag in enumerate(tags):
                x = np.array(shared[j], dtype=np.float64)
                out.append({"method": m, "tag": tag, "k": int(k), "n_pairs": int(x.size),
                            "shared_mean": float(x.mean()) if x.size else None,
                            "shared_sd": float(x.std(ddof=1)) if x.size > 1 else None,
                            "shared_min": float(x.min()) if x.size else None,
                            "shared_max": float(x.max()) if x.size else None,
                            "chance": chance_overlap(n_units, k)})
    return out


def agreement_across_runs(per_run: Sequence[list[dict]]) -> list[dict]:
    """Per method pair, tag and k, over runs (each an ``agreement_rows`` list): n_runs, shared mean and sd."""
    groups: dict[tuple, list[float]] = {}
    chance: dict[tuple, float] = {}
    for rows in per_run:
        for r in rows:
            key = (r["method_a"], r["method_b"], r["tag"], r["k"])
            groups.setdefault(key, [])
            chance[key] = r["chance"]
            if r["shared"] is not None:
                groups[key].append(float(r["shared"]))
    out = []
    for (a, b, tag, k), xs in groups.items():
        x = np.array(xs)
        out.append({"method_a": a, "method_b": b, "tag": tag, "k": k, "n_runs": int(x.size),
                    "shared_mean": float(x.mean()) if x.size else None,
                    "shared_sd": float(x.std(ddof=1)) if x.size > 1 else None, "chance": chance[(a, b, tag, k)]})
    return out


def read_agreement_csv(path: str | os.PathLike) -> list[dict]:
    """``methods_agreement.csv`` read back as ``agreement_rows`` gives them (plus rank_split): k and shared as ints
    (an empty shared cell as None), chance as a float.

    Raises:
        AnalysisInputError: another header, naming the file.
    """
    fields = ("rank_split", *AGREEMENT_FIELDS)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != fields:
            raise AnalysisInputError(f"{path}: expected a methods_agreement.csv with header {','.join(fields)}")
        return [{**r, "k": int(r["k"]), "shared": int(r["shared"]) if r["shared"] else None,
                 "chance": float(r["chance"])} for r in reader]


def pair_matrix(rows: list[dict], methods: Sequence[str], k: int, tags: Sequence[str] | None = None,
                value: str = "shared") -> np.ndarray:
    """(M, M) mean over ``tags`` (default: every tag) of the shared count of each method pair at ``k``, the
    diagonal k; NaN where no tag has a value."""
    idx = {m: i for i, m in enumerate(methods)}
    sums, counts = np.zeros((len(methods),) * 2), np.zeros((len(methods),) * 2)
    for r in rows:
        v = r.get(value)
        if r["k"] != k or v is None or (tags is not None and r["tag"] not in tags):
            continue
        if r["method_a"] in idx and r["method_b"] in idx:
            i, j = idx[r["method_a"]], idx[r["method_b"]]
            for a, b in ((i, j), (j, i)):
                sums[a, b] += v
                counts[a, b] += 1
    with np.errstate(invalid="ignore"):
        M = sums / counts
    np.fill_diagonal(M, float(k))
    return M
