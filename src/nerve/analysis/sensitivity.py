"""Unit contributions and per-tag sensitivity, following Xin, Lin & Yu (EMNLP 2019)."""

from __future__ import annotations

import numpy as np

from nerve.analysis.checks import AnalysisInputError, float_matrix, labels_array

MAX_CONTRIBUTION_ELEMENTS = 50_000_000


def contributions(h: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Contribution of every unit to every tag logit at every token: c[t, j, i] = W[j, i] * h[t, i].

    Follows Xin, Lin & Yu (2019), who split a tag's logit into per-unit terms.
    Meant for small inputs (tests, single sentences): the result has
    n_tokens * n_tags * n elements, capped at ``MAX_CONTRIBUTION_ELEMENTS``.

    Args:
        h: (n_tokens, n) unit values.
        W: (n_tags, n) weights of the tag projection.

    Returns:
        float64 (n_tokens, n_tags, n).

    Raises:
        ValueError: on shape mismatch or a result over the size cap.
    """
    h = float_matrix(h, "h", (None, None))
    W = float_matrix(W, "W", (None, h.shape[1]))
    size = h.shape[0] * W.shape[0] * h.shape[1]
    if size > MAX_CONTRIBUTION_ELEMENTS:
        raise AnalysisInputError(
            f"contributions: expected at most {MAX_CONTRIBUTION_ELEMENTS} elements, got {size}; use sensitivity()"
        )
    return h.astype(np.float64)[:, None, :] * W.astype(np.float64)[None, :, :]


def tag_means(h: np.ndarray, labels: np.ndarray, n_tags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean unit value over the tokens labelled j and over the other tokens, for every tag j.

    Args:
        h: (n_tokens, n) unit values.
        labels: int (n_tokens,) tag ids in [0, n_tags).
        n_tags: number of tags.

    Returns:
        (mean_in, mean_out, counts): float64 (n_tags, n), float64 (n_tags, n), int64 (n_tags,);
        rows of a tag with no token (mean_in) or with every token (mean_out) are NaN.
    """
    h64 = np.asarray(h, dtype=np.float64)
    n_tokens = h64.shape[0]
    counts = np.bincount(labels, minlength=n_tags).astype(np.int64)
    sums = np.zeros((n_tags, h64.shape[1]))
    present = np.flatnonzero(counts)
    if present.size:
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
        sums[present] = np.add.reduceat(h64[order], starts, axis=0)
    rest = h64.sum(axis=0)[None, :] - sums
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = sums / counts[:, None]
        mean_out = rest / (n_tokens - counts)[:, None]
    mean_in[counts == 0] = np.nan
    mean_out[counts == n_tokens] = np.nan
    return mean_in, mean_out, counts


def sensitivity(h: np.ndarray, W: np.ndarray, labels: np.ndarray, n_tags: int | None = None) -> np.ndarray:
    """Sensitivity of every unit to every tag (Xin, Lin & Yu 2019).

    s[i, j] = mean of c[t, j, i] over tokens labelled j minus its mean over the other
    tokens, with c[t, j, i] = W[j, i] * h[t, i]; computed without the (t, j, i) tensor as
    s[i, j] = W[j, i] * (mean h_i over j - mean h_i over not-j).

    Args:
        h: (n_tokens, n) unit values at the analysis site.
        W: (n_tags, n) weights of the tag projection.
        labels: int (n_tokens,) tag ids: predicted ("predicted" bucket) or gold ("gold" bucket).
        n_tags: number of tags; default and required value: W.shape[0].

    Returns:
        float64 (n, n_tags); the column of a tag with no token, or carried by every
        token, is NaN.

    Raises:
        ValueError: on shape mismatch or labels out of range.
    """
    h = float_matrix(h, "h", (None, None))
    W = float_matrix(W, "W", (None, h.shape[1]))
    if n_tags is None:
        n_tags = W.shape[0]
    if n_tags != W.shape[0]:
        raise AnalysisInputError(f"n_tags: expected {W.shape[0]} (rows of W), got {n_tags}")
    labels = labels_array(labels, "labels", h.shape[0], n_tags)
    mean_in, mean_out, _ = tag_means(h, labels, n_tags)
    return (W.astype(np.float64) * (mean_in - mean_out)).T
