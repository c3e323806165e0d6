"""Per-tag token counts of many predictions in one compiled pass: what the ablation sweeps score with."""

from __future__ import annotations

import numpy as np

from nerve.analysis.checks import AnalysisInputError, labels_array


class TagCounter:
    """Correct and predicted token counts per tag for many predictions, in one compiled pass over each."""

    def __init__(self, gold: np.ndarray, n_tags: int):
        self.support = np.bincount(gold, minlength=n_tags)
        self.gold = np.ascontiguousarray(gold, dtype=np.int64)

    def counts(self, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """int64 (m, n_tags) twice for preds (m, n_tokens): tokens of gold tag j predicted j (right), and tokens
        predicted as j."""
        preds = np.ascontiguousarray(preds, dtype=np.int64)
        right = np.zeros((preds.shape[0], self.support.size), np.int64)
        predicted = np.zeros_like(right)
        if _count_kernel()(preds, self.gold, right, predicted):
            raise AnalysisInputError(f"pred: expected tag ids in 0..{self.support.size - 1}, got "
                                     f"{preds.min()}..{preds.max()}")
        return right, predicted

    def __call__(self, preds: np.ndarray) -> np.ndarray:
        """int64 (m, n_tags) correct counts for preds (m, n_tokens)."""
        return self.counts(preds)[0]


_COUNT = None


def _count_kernel():
    """The compiled counting loop (on first use; cached on disk where numba can write)."""
    global _COUNT
    if _COUNT is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def count(preds, gold, right, predicted):  # pragma: no cover - runs compiled
            bad = 0
            for r in range(preds.shape[0]):
                for t in range(gold.size):
                    p = preds[r, t]
                    if p < 0 or p >= right.shape[1]:
                        bad += 1
                        continue
                    predicted[r, p] += 1
                    if p == gold[t]:
                        right[r, p] += 1
            return bad

        _COUNT = count
    return _COUNT


def per_tag_accuracy_arrays(gold: np.ndarray, pred: np.ndarray, n_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-tag accuracy (share of gold-j tokens predicted j) and token accuracy.

    Args:
        gold: int (n_tokens,) gold tag ids.
        pred: int (n_tokens,) or (m, n_tokens) predicted tag ids (one or m predictions).
        n_tags: number of tags.

    Returns:
        (per_tag, token_accuracy): float64 (..., n_tags) with NaN for a tag that has
        no gold token, and float64 (...,) (NaN with no tokens).
    """
    if np.ndim(gold) != 1:
        raise AnalysisInputError(f"gold: expected shape (n_tokens,), got {np.shape(gold)}")
    gold = labels_array(gold, "gold", len(gold), n_tags)
    p = np.asarray(pred)
    if p.ndim not in (1, 2) or p.shape[-1] != gold.size:
        raise AnalysisInputError(f"pred: expected shape ({gold.size},) or (m, {gold.size}), got {p.shape}")
    p2 = p.reshape(-1, gold.size)
    counter = TagCounter(gold, n_tags)
    right = counter(p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_tag = right / counter.support
        overall = right.sum(axis=1) / gold.size
    return (per_tag[0], overall[0]) if p.ndim == 1 else (per_tag, overall)
