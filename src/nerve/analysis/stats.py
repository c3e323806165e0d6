"""Statistics behind the findings' verdicts: permutation nulls over units, bootstrap intervals over runs, a
one-sample test of a per-run statistic, and Holm–Bonferroni over every case of a study."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
from scipy.stats import ttest_1samp


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


def bootstrap_ci(x: Sequence[float], rng: np.random.Generator, resamples: int = 10_000,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (runs): ``resamples`` resamplings of the runs with
    replacement, the (1 − level)/2 and (1 + level)/2 quantiles of their means (linear interpolation).

    Returns (NaN, NaN) for fewer than 2 values."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return math.nan, math.nan
    # shape: (resamples, n) indices -> (resamples,) means
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def one_sample_p(x: Sequence[float], null_value: float = 0.0) -> float:
    """Two-sided one-sample t-test p of the mean of ``x`` (one value per run) against ``null_value``.

    Values that do not vary (to 1e-12) give p = 1 when they equal the null value and 0 otherwise; fewer than 2 values
    give NaN (no test)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return math.nan
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())):  # no spread (e.g. copies of one run)
        return 1.0 if np.allclose(x, null_value, rtol=0, atol=1e-12) else 0.0
    return float(ttest_1samp(x, null_value).pvalue)


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
    """Where the oriented statistic d lies among the null's: one-sided p, null mean, 95 % range and z."""
    fin = null[np.isfinite(null)]
    if not fin.size:
        return {}
    sd = float(fin.std(ddof=1)) if fin.size > 1 else math.nan
    z = (stat - fin.mean()) / sd if sd > 0 else math.nan
    lo, hi = np.quantile(fin, [0.025, 0.975])
    return {"null_p": empirical_p(d, null_d), "null_mean": float(fin.mean()), "null_lo": float(lo),
            "null_hi": float(hi), "null_z": float(z) if math.isfinite(z) else None, "null_n": int(fin.size)}
