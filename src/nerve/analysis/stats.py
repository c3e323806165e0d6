"""Statistics behind the findings' verdicts: permutation nulls over units (descriptive since issue 29), seeded
generators per case, and Holm–Bonferroni adjusted p over every case of a study (the combination of runs and the
verdicts are ``meta``'s)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np


def case_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and the text ``keys`` (e.g. finding id, case key): the same case gets the
    same draws in every run and every process, and different cases get independent ones."""
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode("utf-8")) for k in keys)])


def unit_permutations(n_units: int, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """(n_perm, n_units) intp: one random permutation of the units per row."""
    return np.argsort(rng.random((n_perm, n_units)), axis=1)


def permuted_column_products(u: np.ndarray, b: int, perms: np.ndarray) -> np.ndarray:
    """Dot products of column b of ``u``, its units permuted, with every column.

    Args:
        u: (n, T) unit-length columns (centred sensitivities for a correlation, weight rows transposed for a
            cosine; ``matrices.unit_vectors``), NaN in a column that has no direction.
        b: the permuted column.
        perms: (P, n) permutations of the units (``unit_permutations``).

    Returns:
        (P, T): row p holds the matrix row of tag b with b's values permuted by ``perms[p]``; the entry of b
        itself is 1 (a unit vector with itself).
    """
    # shape: (P, n) @ (n, T) -> (P, T)
    M = np.nan_to_num(u[:, b])[perms] @ np.nan_to_num(u)
    M[:, b] = 1.0
    bad = ~np.all(np.isfinite(u), axis=0)
    M[:, bad] = np.nan
    if bad[b]:
        M[:] = np.nan
    return np.clip(M, -1.0, 1.0)


def empirical_p(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value, (1 + #{null >= observed}) / (1 + #null), over the finite null values
    (Phipson & Smyth 2010: never 0); NaN when the observation or every null value is NaN."""
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if not math.isfinite(observed) or not null.size:
        return math.nan
    return float((1 + np.sum(null >= observed)) / (1 + null.size))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (Holm 1979), in the input order; NaN entries are not tests and stay
    NaN (m counts the finite ones).

    The i-th smallest of m p-values is adjusted to max over j <= i of min(1, (m − j + 1) · p_(j)); a case is
    significant at family-wise level alpha when its adjusted p is below alpha."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def null_fields(d: float, null_d: np.ndarray, stat: float, null: np.ndarray) -> dict:
    """Where the oriented statistic d lies among the null's: one-sided p, null mean, 95 % range, z, and the
    smallest p the null can give (its floor, 1 / (1 + #null))."""
    fin = null[np.isfinite(null)]
    if not fin.size:
        return {}
    sd = float(fin.std(ddof=1)) if fin.size > 1 else math.nan
    z = (stat - fin.mean()) / sd if sd > 0 else math.nan
    lo, hi = np.quantile(fin, [0.025, 0.975])
    return {"null_p": empirical_p(d, null_d), "null_mean": float(fin.mean()), "null_lo": float(lo),
            "null_hi": float(hi), "null_z": float(z) if math.isfinite(z) else None, "null_n": int(fin.size),
            "null_floor": 1.0 / (1 + fin.size)}
