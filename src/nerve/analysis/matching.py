"""Which unit of one run is which unit of another: Hungarian matching of sensitivity profiles with chance
baselines, and the agreement of two runs' tag x tag matrices."""

from __future__ import annotations

import numpy as np

from nerve.analysis.matrices import unit_vectors


def profile_corr(s_a: np.ndarray, s_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of every unit of run a with every unit of run b over their sensitivity profiles.

    A unit's profile is its row of s (its sensitivity to each tag). Tag columns holding a NaN in
    either run are dropped; a constant profile correlates 0 with everything.

    Args:
        s_a: (n_a, T), s_b: (n_b, T) sensitivities with the same tag columns in the same order.

    Returns:
        (C float64 (n_a, n_b), used bool (T,) mask of the tag columns used).
    """
    s_a, s_b = np.asarray(s_a, dtype=np.float64), np.asarray(s_b, dtype=np.float64)
    if s_a.ndim != 2 or s_b.ndim != 2 or s_a.shape[1] != s_b.shape[1]:
        raise ValueError(f"s_a, s_b: expected (n_a, T) and (n_b, T) with one T, got {s_a.shape} and {s_b.shape}")
    used = np.all(np.isfinite(s_a), axis=0) & np.all(np.isfinite(s_b), axis=0)
    if used.sum() < 2:
        raise ValueError(f"s_a, s_b: expected at least 2 tag columns without NaN in both runs, got {int(used.sum())}")
    a, b = s_a[:, used], s_b[:, used]
    za, _ = unit_vectors(a - a.mean(axis=1, keepdims=True), axis=1, ref=a)
    zb, _ = unit_vectors(b - b.mean(axis=1, keepdims=True), axis=1, ref=b)
    return np.clip(np.nan_to_num(za) @ np.nan_to_num(zb).T, -1.0, 1.0), used


def assign_units(s_a: np.ndarray, s_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one-to-one matching of ``match_units`` alone: (rows, cols, C), unit rows[i] of a is unit cols[i] of b,
    chosen by the Hungarian algorithm to maximise the summed profile correlation C (``profile_corr``)."""
    from scipy.optimize import linear_sum_assignment  # here: a study worker that matches nothing never loads it

    C, _ = profile_corr(s_a, s_b)
    rows, cols = linear_sum_assignment(C, maximize=True)
    return rows, cols, C


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    return float(np.mean(x)), float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))


def match_units(s_a: np.ndarray, s_b: np.ndarray, draws: int = 100, seed: int = 0) -> dict:
    """One-to-one matching of the units of two runs by sensitivity profile, with two chance baselines.

    Units are numbered arbitrarily in each trained model, so unit i of one seed is never compared
    with unit i of another. Instead the Hungarian algorithm (``linear_sum_assignment``) pairs the
    units of a and b (min(n_a, n_b) pairs) so that the summed profile correlation (``profile_corr``)
    is largest; the statistic is the mean correlation of the matched pairs. Baselines, ``draws``
    each, one seeded generator:

    - random: the mean correlation of a uniformly random one-to-one assignment (what matching
      without looking at the profiles gives);
    - shuffled: the Hungarian matched mean after permuting each unit's profile of run b across
      tags independently per unit (what optimal matching finds in profiles with no tag structure;
      the fair null for a maximised statistic). ``shuffled_p`` = (1 + #draws >= matched) / (1 + draws).

    Args:
        s_a: (n_a, T), s_b: (n_b, T) sensitivities, tag columns aligned.

    Returns:
        dict: rows, cols (lists: unit rows[i] of a matches unit cols[i] of b), corr (list of the
        matched correlations), n_tags (columns used), matched_mean, random_mean, random_p2_5,
        random_p97_5, shuffled_mean, shuffled_p2_5, shuffled_p97_5, shuffled_p, draws, seed.
    """
    from scipy.optimize import linear_sum_assignment

    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws: expected an integer >= 1, got {draws!r}")
    C, used = profile_corr(s_a, s_b)
    rows, cols = linear_sum_assignment(C, maximize=True)
    matched = float(C[rows, cols].mean())
    rng = np.random.default_rng(seed)
    n_a, n_b = C.shape
    m = min(n_a, n_b)
    rand = np.empty(draws)
    for d in range(draws):
        if n_a <= n_b:
            rand[d] = C[np.arange(n_a), rng.permutation(n_b)[:n_a]].mean()
        else:
            rand[d] = C[rng.permutation(n_a)[:n_b], np.arange(n_b)].mean()
    sb = np.asarray(s_b, dtype=np.float64)[:, used]
    shuf = np.empty(draws)
    for d in range(draws):
        Cs, _ = profile_corr(np.asarray(s_a, dtype=np.float64)[:, used], rng.permuted(sb, axis=1))
        r, c = linear_sum_assignment(Cs, maximize=True)
        shuf[d] = Cs[r, c].mean()
    rm, rlo, rhi = _interval(rand)
    sm, slo, shi = _interval(shuf)
    return {"rows": rows.tolist(), "cols": cols.tolist(), "corr": C[rows, cols].tolist(), "n_matched": int(m),
            "n_tags": int(used.sum()), "matched_mean": matched, "random_mean": rm, "random_p2_5": rlo,
            "random_p97_5": rhi, "shuffled_mean": sm, "shuffled_p2_5": slo, "shuffled_p97_5": shi,
            "shuffled_p": float((1 + np.sum(shuf >= matched - 1e-12)) / (1 + draws)), "draws": int(draws),
            "seed": int(seed)}


def upper_pearson(x: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """(number of pairs, Pearson r) of the upper triangles (no diagonal) of x and y, finite pairs only."""
    iu = np.triu_indices_from(x, k=1)
    a, b = np.asarray(x, float)[iu], np.asarray(y, float)[iu]
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return int(a.size), float("nan")
    return int(a.size), float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
