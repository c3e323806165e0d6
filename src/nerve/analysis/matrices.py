"""Tag x tag matrices of one analysed run (Xin, Lin & Yu, EMNLP 2019): correlation of the tags' sensitivities
over units, cosine of their output weights, units shared by their top-k rankings; and their CSV form."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nerve.analysis.ranking import rank_units
from nerve.tags import tag_order


def unit_vectors(x: np.ndarray, axis: int, ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectors along ``axis`` scaled to unit length, and a mask of those that are finite and not (near) zero.

    Near zero: norm below 1e-12 of the norm bound of ``ref`` (default x; pass the uncentred data so that
    a constant vector, centred to rounding noise, counts as zero).
    """
    norm = np.sqrt(np.sum(x * x, axis=axis))
    scale = np.max(np.abs(x if ref is None else ref), axis=axis) * math.sqrt(x.shape[axis])
    ok = np.all(np.isfinite(x), axis=axis) & (norm > 1e-12 * scale) & (norm > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / np.expand_dims(np.where(ok, norm, np.nan), axis), ok


def _cosine_rows(x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """(m, m) cosine of the rows of x (m, d); NaN rows/columns for non-finite or zero rows, diagonal 1."""
    u, ok = unit_vectors(x, axis=1, ref=ref)
    c = np.clip(np.nan_to_num(u) @ np.nan_to_num(u).T, -1.0, 1.0)
    c[~ok, :] = np.nan
    c[:, ~ok] = np.nan
    c[np.diag_indices_from(c)] = np.where(ok, 1.0, np.nan)
    return c


def corr_matrix(s: np.ndarray) -> np.ndarray:
    """Pearson correlation between the sensitivity columns of every pair of tags, over units.

    Xin, Lin & Yu (2019) correlate the tags' sensitivity vectors to show which tags share units
    (B-x with I-x positive, B-x with I-y negative).

    Args:
        s: (n, T) sensitivities (``sensitivity.csv``), n >= 2 units.

    Returns:
        float64 (T, T), symmetric, diagonal 1; the row and column of a tag whose sensitivity
        column holds a NaN or is constant are NaN.

    Raises:
        ValueError: if ``s`` is not 2-d with at least 2 rows.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        raise ValueError(f"s: expected shape (n_units >= 2, n_tags), got {s.shape}")
    with np.errstate(invalid="ignore"):
        centred = s - s.mean(axis=0)
    return _cosine_rows(centred.T, ref=s.T)


def similarity_matrix(W: np.ndarray) -> np.ndarray:
    """Cosine similarity between the output-weight rows of every pair of tags (Xin, Lin & Yu 2019).

    Args:
        W: (T, n) weights of the tag projection (``activations.npz`` key W).

    Returns:
        float64 (T, T), symmetric, diagonal 1; NaN row and column for an all-zero or non-finite row.

    Raises:
        ValueError: if ``W`` is not 2-d.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] == 0:
        raise ValueError(f"W: expected shape (n_tags, n_units >= 1), got {W.shape}")
    return _cosine_rows(W)


def overlap_matrix(x: np.ndarray, k: int = 10) -> np.ndarray:
    """Number of units shared by the top-k importance rankings of every pair of tags.

    Args:
        x: either integer rankings (T, n) (``rank_units``: row j lists units, most important
            for tag j first) or float sensitivities (n, T), ranked with ``rank_units`` (an
            all-NaN column ranks units by index). The dtype decides which.
        k: ranking depth, 1..n.

    Returns:
        int64 (T, T), symmetric, diagonal k.

    Raises:
        ValueError: on a bad shape or k outside 1..n.
    """
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"x: expected rankings (n_tags, n_units) or sensitivities (n_units, n_tags), got {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        rankings = a
        if rankings.size and (rankings.min() < 0 or rankings.max() >= rankings.shape[1]):
            raise ValueError(f"rankings: expected unit indices in [0, {rankings.shape[1]}), got "
                             f"{rankings.min()}..{rankings.max()}")
    else:
        rankings = rank_units(a)
    n_tags, n = rankings.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k: expected an integer in 1..{n} (number of units), got {k!r}")
    member = np.zeros((n_tags, n), dtype=np.int64)
    member[np.arange(n_tags)[:, None], rankings[:, :k]] = 1
    return member @ member.T


def format_value(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "nan" if not np.isfinite(v) else f"{float(v):.9g}"


def matrix_csv(M: np.ndarray, tags: Sequence[str]) -> str:
    """Text of a tag x tag CSV: header ``tag,<tags...>``, one row per tag, both in ``tag_order``.

    Args:
        M: (T, T) matrix indexed like ``tags``; integer matrices are written as integers,
            floats as %.9g ("nan" for NaN).
    """

    M = np.asarray(M)
    if M.shape != (len(tags), len(tags)):
        raise ValueError(f"M: expected shape ({len(tags)}, {len(tags)}) for {len(tags)} tags, got {M.shape}")
    order = tag_order(tags)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["tag", *(tags[j] for j in order)])
    w.writerows([tags[i], *(format_value(M[i, j]) for j in order)] for i in order)
    return buf.getvalue()


def read_matrix_csv(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """(M float64 (T, T), tags) of a file written by ``matrix_csv``, in the file's order."""
    rows = [r for r in _read_csv(Path(path)) if r]
    if not rows or rows[0][0] != "tag" or [r[0] for r in rows[1:]] != rows[0][1:]:
        raise ValueError(f"{path}: expected a tag x tag CSV with header tag,<tags...> and one row per tag")
    return np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float64), rows[0][1:]


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))
