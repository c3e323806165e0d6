"""Neuron-ranking methods of the field as pure functions: (n_tokens × n) unit values plus labels -> (n × T) scores.

A tag's ranking is its score column sorted descending, ties by unit index (``nerve.analysis.ranking.rank_units``),
for every method alike, so that the methods are judged by the same ablation sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.sensitivity import sensitivity

PROBE_L1_RATIO = 0.5  # elastic net: half L1, half L2 (Dalvi et al. 2019 use both penalties)
PROBE_C = 1.0  # inverse regularisation strength of scikit-learn's LogisticRegression
PROBE_MAX_ITER = 200


@dataclass(frozen=True)
class RankInput:
    """What a ranking method reads: h float (n_tokens, n) unit values, labels int (n_tokens,) tag ids (the
    model's predictions or gold, by the analysis' bucket), W float (T, n) tag projection, T tags."""

    h: np.ndarray
    labels: np.ndarray
    W: np.ndarray
    n_tags: int


def _class_means(h: np.ndarray, labels: np.ndarray, n_tags: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, n) mean of each unit over the tokens of each tag (NaN for a tag without tokens), and (T,) counts."""
    counts = np.bincount(labels, minlength=n_tags).astype(np.float64)
    sums = np.zeros((n_tags, h.shape[1]))
    np.add.at(sums, labels, h)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None], counts


def sensitivity_scores(x: RankInput) -> np.ndarray:
    """Xin, Lin & Yu (EMNLP 2019): s[i, j] = mean(W[j,i]·h[t,i] | label j) − mean(W[j,i]·h[t,i] | label ≠ j).

    Returns: float (n, T); NaN columns for tags without tokens."""
    return sensitivity(x.h, x.W, x.labels)


def probeless_scores(x: RankInput) -> np.ndarray:
    """Antverg & Belinkov (ICLR 2022), "On the pitfalls of analyzing individual neurons": for tag z, unit i
    scores Σ_{z' ≠ z} |mean(h_i | z) − mean(h_i | z')| over the tags z' that have tokens.

    Returns: float (n, T); NaN columns for tags without tokens."""
    means, counts = _class_means(np.asarray(x.h, dtype=np.float64), x.labels, x.n_tags)
    present = counts > 0
    out = np.full((x.h.shape[1], x.n_tags), np.nan)
    for z in np.flatnonzero(present):
        others = present.copy()
        others[z] = False
        out[:, z] = np.abs(means[z][None, :] - means[others]).sum(axis=0)
    return out


def selectivity_scores(x: RankInput) -> np.ndarray:
    """(mean(h_i | z) − mean(h_i | not z)) / (max_t h[t,i] − min_t h[t,i]); a constant unit scores 0.

    Returns: float (n, T); NaN columns for tags without tokens (or without any other token)."""
    h = np.asarray(x.h, dtype=np.float64)
    total = h.sum(axis=0)
    means, counts = _class_means(h, x.labels, x.n_tags)
    n_tokens = len(x.labels)
    span = h.max(axis=0) - h.min(axis=0)
    out = np.full((h.shape[1], x.n_tags), np.nan)
    for z in range(x.n_tags):
        rest = n_tokens - counts[z]
        if counts[z] == 0 or rest == 0:
            continue
        diff = means[z] - (total - means[z] * counts[z]) / rest
        out[:, z] = np.divide(diff, span, out=np.zeros_like(diff), where=span > 0)
    return out


def probe_scores(x: RankInput, seed: int = 0) -> np.ndarray:
    """Dalvi et al. (AAAI 2019), "What is one grain of sand in the desert?": a multinomial logistic-regression
    probe h -> tag with an elastic-net penalty (scikit-learn's multinomial ``LogisticRegression(solver="saga",
    l1_ratio=PROBE_L1_RATIO, C=PROBE_C)`` on standardised units); unit i scores |coef[z, i]| for tag
    z. Tags without tokens get NaN; with only one tag present every score is 0.

    Returns: float (n, T)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    h = np.asarray(x.h, dtype=np.float64)
    present = np.unique(x.labels)
    out = np.full((h.shape[1], x.n_tags), np.nan)
    if len(present) < 2:
        out[:, present] = 0.0
        return out
    std = h.std(axis=0)
    z = (h - h.mean(axis=0)) / np.where(std > 0, std, 1.0)
    clf = LogisticRegression(solver="saga", l1_ratio=PROBE_L1_RATIO, C=PROBE_C,
                             max_iter=PROBE_MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the ranking, not the optimum, is what is used
        clf.fit(z, x.labels)
    coef = clf.coef_ if len(present) > 2 else np.vstack([-clf.coef_[0], clf.coef_[0]])
    out[:, clf.classes_] = np.abs(coef).T
    return out


def random_scores(x: RankInput, seed: int = 0) -> np.ndarray:
    """A seeded uniform score per unit and tag: the ranking every method must beat.

    Returns: float (n, T)."""
    return np.random.default_rng(seed).random((x.h.shape[1], x.n_tags))


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "sensitivity": sensitivity_scores,
    "probeless": probeless_scores,
    "probe": probe_scores,
    "selectivity": selectivity_scores,
    "random": random_scores,
}
_SEEDED = {"probe", "random"}


def method_scores(name: str, x: RankInput, seed: int = 0) -> np.ndarray:
    """The (n, T) scores of ranking method ``name`` (one of ``METHODS``).

    Raises:
        AnalysisInputError: an unknown method name.
    """
    if name not in METHODS:
        raise AnalysisInputError(f"method {name!r}: expected one of {', '.join(METHODS)}")
    return METHODS[name](x, seed) if name in _SEEDED else METHODS[name](x)
