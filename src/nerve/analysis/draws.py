"""Baselines with many draws at the judged ks: random unit sets, and random sets matched to the top k's
activation scale (each top unit replaced by a random unit of the same variance decile).

A method's top-k drop is judged against the drops of random k-unit sets at the same k. With the curve's 20 draws
the empirical p cannot go below 1/21; here each draw is decoded at the judged ks alone (one matrix product per
set, ``decoders.*.set_units``), so 1,000 draws cost about as much as a curve of 20, and p can reach 1/1,001.
A random set of low-variance units is a weak control: the matched draws keep the top k's variance deciles (the
deciles of the units' variances over the ranking split), so that a method is not credited for finding units that
merely move a lot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.ablation import random_orders
from nerve.analysis.checks import (
    AnalysisInputError,
    bias_array,
    crf_arrays,
    float_matrix,
    labels_array,
    sentence_starts_array,
)
from nerve.analysis.decoders import CrfDecoder, SoftmaxDecoder
from nerve.analysis.tag_counts import TagCounter
from nerve.io import atomic_save

N_DECILES = 10


@dataclass(frozen=True)
class DrawSpec:
    """ks: the judged ks (each in 1..n); draws: random k-unit sets (the first k of ``draws`` seeded permutations,
    the same permutations as the curve's draws of ``ablation.random_orders``, so its first draws coincide);
    matched: variance-matched draws per method, tag and k of ``matched_ks`` (default: ``ks``); seed; keep:
    sufficiency (the k units kept, every other unit intervened) instead of necessity."""

    ks: tuple[int, ...]
    draws: int = 1000
    matched: int = 100
    seed: int = 0
    keep: bool = False
    matched_ks: tuple[int, ...] = ()


class SetScorer:
    """Each tag's token recall and token F1 with exactly a set of units intervened (or kept): one decode a set.

    data: the scoring split (``checks.Activations``): h (N, n), W (T, n), b (T,), gold (N,), sentence_starts,
    tags, crf; values: the intervened units' values, None (0), (n,) or (N, n) per token."""

    def __init__(self, data, values: np.ndarray | None, max_k: int):
        h = float_matrix(data.h, "h", (None, None))
        n_tokens, n = h.shape
        n_tags = len(data.tags)
        W = float_matrix(data.W, "W", (n_tags, n)).astype(np.float64)
        b = bias_array(data.b, n_tokens, n_tags)
        gold = labels_array(data.gold, "gold", n_tokens, n_tags)
        if values is not None:
            m = float_matrix(values, "values", (n_tokens, n) if np.ndim(values) == 2 else (n,)).astype(np.float64)
            h, b = h - m, b + m @ W.T  # shapes: (N, n), (T,) or (N, T)
        crf = crf_arrays(data.crf, n_tags)
        self.decoder = (SoftmaxDecoder(h, W, b, max_k) if crf is None else
                        CrfDecoder(h, W, b, sentence_starts_array(data.sentence_starts, n_tokens), crf))
        self.counter = TagCounter(gold, n_tags)
        self.n = n

    def __call__(self, units: np.ndarray, keep: bool = False, grown_from: int | None = None) -> np.ndarray:
        """float64 (T, 2): each tag's token recall (NaN without gold tokens) and token F1 for the set ``units``;
        ``grown_from``: the previous call's set was ``units[:grown_from]`` (nested sets: only the rest is added)."""
        units = np.asarray(units, dtype=np.intp)
        mask = np.zeros(self.n, dtype=bool)
        mask[units] = True
        if grown_from is None:
            self.decoder.set_units(units, keep)
        else:
            self.decoder.add_units(units[grown_from:], keep)
        pred = self.decoder.decode(~mask if keep else mask)
        right, predicted = self.counter.counts(pred[None, :])
        support = self.counter.support
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = right[0] / support
            f1 = 2 * right[0] / (predicted[0] + support)
        return np.stack([recall, f1], axis=1)  # shape: (T, 2)


def variance_deciles(h_ref: np.ndarray) -> np.ndarray:
    """intp (n,): each unit's variance decile (0..9) over the reference split's (N, n) activations (ties to the
    lower decile; fewer distinct deciles when units tie)."""
    var = np.asarray(h_ref, dtype=np.float64).var(axis=0)  # shape: (n,)
    ranks = np.argsort(np.argsort(var, kind="stable"), kind="stable")
    return (ranks * N_DECILES // len(var)).astype(np.intp)


def matched_sets(top: np.ndarray, deciles: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """intp (draws, k): per draw, for each unit of ``top`` (k,), a random unit of the same variance decile, no unit
    twice within a draw and none of ``top`` (a decile too small for that lends from all of its units, ``top``
    included, and then from the nearest deciles)."""
    k = len(top)
    out = np.empty((draws, k), np.intp)
    need = np.bincount(deciles[top], minlength=N_DECILES)
    pools = []
    for d in np.flatnonzero(need):
        pool = np.setdiff1d(np.flatnonzero(deciles == d), top)
        if len(pool) < need[d]:
            pool = np.flatnonzero(deciles == d)
        if len(pool) < need[d]:  # lend from the nearest deciles
            near = np.argsort(np.abs(deciles - d), kind="stable")
            pool = near[:need[d]]
        pools.append((pool, int(need[d])))
    for r in range(draws):
        out[r] = np.concatenate([rng.choice(pool, size=c, replace=False) for pool, c in pools])
    return out


def random_draw_scores(score, values: np.ndarray | None, spec: DrawSpec) -> np.ndarray:
    """float64 (K, D, T, 2): each tag's recall and F1 with the first k units of each of D seeded random
    permutations intervened (or kept), k in ``spec.ks``."""
    n = score.h.shape[1]
    ks = spec.ks
    scorer = SetScorer(score, values, max(ks))
    orders = random_orders(n, spec.draws, spec.seed)
    out = np.empty((len(ks), spec.draws, len(score.tags), 2))
    for d, order in enumerate(orders):
        for i, k in enumerate(ks):  # nested sets: each k adds the units after the previous k
            out[i, d] = scorer(order[:k], spec.keep, ks[i - 1] if i else None)
    return out


def matched_draw_scores(score, values: np.ndarray | None, rankings: Mapping[str, np.ndarray],
                        deciles: np.ndarray, spec: DrawSpec) -> np.ndarray:
    """float64 (M, T, K_m, D_m, 2): for each method (in ``rankings`` order), target tag z and k of
    ``spec.matched_ks`` (default ``spec.ks``), z's recall and F1 with ``spec.matched`` variance-matched sets of
    that method's top k intervened (or kept); seeded per (method, tag, k) by ``spec.seed``."""
    ks = spec.matched_ks or spec.ks
    scorer = SetScorer(score, values, max(ks))
    T = len(score.tags)
    out = np.full((len(rankings), T, len(ks), spec.matched, 2), np.nan)
    for m, ranking in enumerate(rankings.values()):
        for z in range(T):
            for i, k in enumerate(ks):
                rng = np.random.default_rng([spec.seed, m, z, k])
                for d, units in enumerate(matched_sets(ranking[z, :k], deciles, spec.matched, rng)):
                    out[m, z, i, d] = scorer(units, spec.keep)[z]
    return out


@dataclass(frozen=True)
class Draws:
    """One intervention's draws: ks (K,), tags (T,), methods (M,), random float64 (K, D, T, 2), matched float64
    (M, T, K_m, D_m, 2) at ``matched_ks`` (K_m,); the last axis: recall, token F1."""

    ks: tuple[int, ...]
    tags: list[str]
    methods: list[str]
    random: np.ndarray
    matched: np.ndarray
    matched_ks: tuple[int, ...] = ()


def write_draws(path: str | os.PathLike, draws: Mapping[str, Draws]) -> None:
    """``methods_draws.npz`` (or ``sufficiency_draws.npz``): per intervention a, arrays ``a/random`` and
    ``a/matched`` (see ``Draws``), with ``ks``, ``tags``, ``methods`` and ``ablate`` (the interventions)."""
    first = next(iter(draws.values()))
    arrays = {"ks": np.array(first.ks), "tags": np.array(first.tags), "methods": np.array(first.methods),
              "ablate": np.array(list(draws)), "matched_ks": np.array(first.matched_ks or first.ks)}
    for a, d in draws.items():
        arrays[f"{a}/random"], arrays[f"{a}/matched"] = d.random, d.matched
    atomic_save(path, lambda buf: np.savez_compressed(buf, **arrays))


def read_draws(path: str | os.PathLike) -> dict[str, Draws]:
    """``write_draws``' file read back: {intervention: ``Draws``}."""
    with np.load(path, allow_pickle=False) as z:
        ks, tags, methods = tuple(int(k) for k in z["ks"]), [str(t) for t in z["tags"]], [str(m) for m in z["methods"]]
        mks = tuple(int(k) for k in z["matched_ks"])
        return {str(a): Draws(ks, tags, methods, z[f"{a}/random"], z[f"{a}/matched"], mks) for a in z["ablate"]}


BASELINE_FIELDS = ("method", "ablate", "score", "target_tag", "k", "own_drop", "random_mean_drop", "random_p",
                   "n_random", "matched_mean_drop", "matched_p", "n_matched")


def baseline_rows(judged: Sequence[dict], draws: Mapping[str, Draws], sign: int = 1) -> list[dict]:
    """Each judged row (``judging.judge_methods``, at the draws' ks) against the many random draws and the matched
    draws: their mean drop from the row's ``baseline`` (the score at k = 0; with ``sign`` = −1, sufficiency: the
    gain) and the empirical one-sided p (1 + #draws whose drop ≥ the method's) / (1 + #draws)."""
    out = []
    for r in judged:
        d = draws.get(r["ablate"])
        if d is None or r["k"] not in d.ks or r["target_tag"] not in d.tags or r["method"] not in d.methods:
            continue
        z, i, s = d.tags.index(r["target_tag"]), d.ks.index(r["k"]), 0 if r["score"] == "accuracy" else 1
        base = r["baseline"]  # k = 0: the same set (none, or every unit intervened) for the method and every draw
        rnd = sign * (base - d.random[i, :, z, s])
        mks = d.matched_ks or d.ks
        mat = (sign * (base - d.matched[d.methods.index(r["method"]), z, mks.index(r["k"]), :, s])
               if r["k"] in mks else np.zeros(0))
        own = r["own_drop"]
        out.append({"method": r["method"], "ablate": r["ablate"], "score": r["score"], "target_tag": r["target_tag"],
                    "k": r["k"], "own_drop": own, **_against(rnd, own, "random"), **_against(mat, own, "matched")})
    return out


def _against(drops: np.ndarray, own: float, name: str) -> dict:
    drops = drops[np.isfinite(drops)]
    if not drops.size or not np.isfinite(own):
        return {f"{name}_mean_drop": None, f"{name}_p": None, f"n_{name}": int(drops.size)}
    return {f"{name}_mean_drop": float(drops.mean()),
            f"{name}_p": float((1 + np.sum(drops >= own - 1e-12)) / (1 + drops.size)), f"n_{name}": int(drops.size)}


SUMMARY_FIELDS = ("ablate", "method", "k", "n_runs", "n_tags", "own_mean", "random_mean", "matched_mean",
                  "excess_matched", "excess_matched_lo", "excess_matched_hi", "tag_runs", "tag_runs_p_below",
                  "p_below", "p_floor", "tag_runs_at_floor")


def baseline_summary(per_run: Sequence[Sequence[dict]], tags: Sequence[str], p_below: float = 1e-3) -> list[dict]:
    """Per intervention, method and k, over runs (``baseline_rows`` of each run, score ``accuracy``, the target
    tags ``tags``, e.g. the entity tags): the mean over runs of each run's mean over tags of the method's own drop,
    of the random draws' and of the matched draws' mean drop; the excess over the matched draws with its 95 %
    t interval over runs (uncorrected; None with fewer than 2 runs); how many tag-runs have a random-draw p
    below ``p_below``; ``p_floor``, the coarsest resolution of those p (1/(draws + 1) of the run with the fewest
    draws: when it is not below ``p_below`` no tag-run can be), and how many tag-runs are at their floor (the
    method's drop reached by no random draw)."""
    from scipy import stats

    cells: dict[tuple, list[list[dict]]] = {}
    for i, rows in enumerate(per_run):
        for r in rows:
            if r["score"] == "accuracy" and r["target_tag"] in tags:
                runs = cells.setdefault((r["ablate"], r["method"], int(r["k"])), [[] for _ in per_run])
                runs[i].append(r)
    out = []
    for (ablate, method, k), runs in cells.items():
        runs = [rs for rs in runs if rs]
        own = [_mean(rs, "own_drop") for rs in runs]
        rnd = [_mean(rs, "random_mean_drop") for rs in runs]
        mat = [_mean(rs, "matched_mean_drop") for rs in runs]
        excess = [o - m for o, m in zip(own, mat) if m is not None]
        lo = hi = None
        if len(excess) >= 2 and np.std(excess) > 0:
            lo, hi = (float(x) for x in stats.t.interval(0.95, len(excess) - 1, np.mean(excess), stats.sem(excess)))
        tested = [r for rs in runs for r in rs if r["random_p"] is not None]
        ps = [r["random_p"] for r in tested]
        floors = [1.0 / (1 + r["n_random"]) for r in tested]
        out.append({"ablate": ablate, "method": method, "k": k, "n_runs": len(runs),
                    "n_tags": int(np.mean([len(rs) for rs in runs])), "own_mean": _avg(own), "random_mean": _avg(rnd),
                    "matched_mean": _avg(mat), "excess_matched": float(np.mean(excess)) if excess else None,
                    "excess_matched_lo": lo, "excess_matched_hi": hi, "tag_runs": len(ps),
                    "tag_runs_p_below": int(np.sum(np.asarray(ps) < p_below)), "p_below": p_below,
                    "p_floor": max(floors) if floors else None,
                    "tag_runs_at_floor": int(sum(p <= f * (1 + 1e-9) for p, f in zip(ps, floors)))})
    return out


def _mean(rows: list[dict], field: str) -> float | None:
    values = [r[field] for r in rows]
    return float(np.mean(values)) if values and None not in values else None


def _avg(values: list) -> float | None:
    return float(np.mean(values)) if values and None not in values else None


def read_baselines_csv(path: str | os.PathLike) -> list[dict]:
    """``methods_baselines.csv`` (or ``sufficiency_baselines.csv``) read back: k and counts as ints, empty cells
    as None, the rest floats (names as strings)."""
    import csv

    out = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != BASELINE_FIELDS:
            raise AnalysisInputError(f"{path}: expected a header {','.join(BASELINE_FIELDS)}")
        for r in reader:
            out.append({key: (v if key in ("method", "ablate", "score", "target_tag") else
                              int(v) if key in ("k", "n_random", "n_matched") else None if v == "" else float(v))
                        for key, v in r.items()})
    return out
