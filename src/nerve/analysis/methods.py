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
PROBE_INIT_ITER = 1000  # lbfgs iterations of the L2-only fit the elastic net starts from
PROBE_MAX_ITER = 30  # saga passes of the elastic-net fit, warm-started (bench/bench_probe.py, docs/RESULTS.md)


@dataclass(frozen=True)
class RankInput:
    """What a ranking method reads: h float (n_tokens, n) unit values, labels int (n_tokens,) tag ids (the
    model's predictions or gold, by the analysis' bucket), W float (T, n) tag projection, T tags."""

    h: np.ndarray
    labels: np.ndarray
    W: np.ndarray
    n_tags: int
    b: np.ndarray | None = None  # (T,) tag bias, for the attribution methods (0 when absent)
    crf: tuple | None = None  # (start (T,), transitions (T, T) [from, to], end (T,)): the "marginal" target
    sentence_starts: np.ndarray | None = None  # (n_sentences,) first token of each sentence, with ``crf``


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
    probe h -> tag with an elastic-net penalty (scikit-learn's multinomial ``LogisticRegression`` with
    ``l1_ratio=PROBE_L1_RATIO``, ``C=PROBE_C`` on standardised units); unit i scores |coef[z, i]| for tag z. Tags
    without tokens get NaN; with only one tag present every score is 0.

    The fit starts from the L2-only solution (``solver="lbfgs"``, which converges in a second) and runs
    ``PROBE_MAX_ITER`` passes of ``solver="saga"`` with the elastic net from there (``warm_start``): a model's own
    predictions are linearly separable in its units, so the weakly regularised optimum lies far out and a cold
    saga start is still far from it after 200 passes (20–30 s on a CoNLL dev split); the warm start gets nearer
    in 30 passes (3–4 s; ``bench/bench_probe.py``).

    Returns: float (n, T)."""


    h = np.asarray(x.h, dtype=np.float64)
    present = np.unique(x.labels)
    out = np.full((h.shape[1], x.n_tags), np.nan)
    if len(present) < 2:
        out[:, present] = 0.0
        return out
    std = h.std(axis=0)
    z = (h - h.mean(axis=0)) / np.where(std > 0, std, 1.0)
    clf = probe_fit(z, x.labels, seed)
    coef = clf.coef_ if len(present) > 2 else np.vstack([-clf.coef_[0], clf.coef_[0]])
    out[:, clf.classes_] = np.abs(coef).T
    return out


def probe_fit(z: np.ndarray, labels: np.ndarray, seed: int = 0, max_iter: int = PROBE_MAX_ITER):
    """The fitted scikit-learn ``LogisticRegression`` of ``probe_scores`` on standardised units z (N, n): lbfgs
    with L2 alone, then ``max_iter`` saga passes with the elastic net, warm-started."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(solver="lbfgs", C=PROBE_C, max_iter=PROBE_INIT_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the ranking, not the optimum, is what is used
        clf.fit(z, labels)
        clf.set_params(solver="saga", l1_ratio=PROBE_L1_RATIO, max_iter=max_iter, warm_start=True,
                       random_state=seed)
        clf.fit(z, labels)
    return clf


def random_scores(x: RankInput, seed: int = 0) -> np.ndarray:
    """A seeded uniform score per unit and tag: the ranking every method must beat.

    Returns: float (n, T)."""
    return np.random.default_rng(seed).random((x.h.shape[1], x.n_tags))


IG_STEPS = 32  # Riemann steps of integrated gradients (Gauss-Legendre, Captum's default method)


def _tag_head(x: RankInput, target: str):
    """f(h) -> (N, T) per token: the log-probabilities of the tags (``"logprob"``: log_softmax of the tag
    projection, a softmax tagger's output), the raw tag scores (``"logit"``: the emissions a CRF reads) or the
    CRF log-marginals (``"marginal"``: log_softmax(e_t + a_t), ``crf_context`` a_t from the actual emissions)."""
    import torch

    from nerve.model.crf import crf_context

    dtype = np.float32 if np.asarray(x.h).dtype == np.float32 else np.float64  # the activations' precision
    W = torch.as_tensor(np.asarray(x.W, dtype=dtype))
    b = torch.zeros(x.n_tags, dtype=W.dtype) if x.b is None else torch.as_tensor(np.asarray(x.b, dtype=dtype))
    context = torch.zeros(1, x.n_tags, dtype=W.dtype)
    if target == "marginal":
        if x.crf is None or x.sentence_starts is None:
            raise AnalysisInputError("target 'marginal': expected a CRF model's transitions and sentence starts")
        em = np.asarray(x.h, dtype=np.float64) @ np.asarray(x.W, dtype=np.float64).T
        em = em + (0.0 if x.b is None else np.asarray(x.b, dtype=np.float64))
        # a tag the constraints forbid has a_t = -inf; a large finite value keeps its gradient 0, not NaN
        context = torch.as_tensor(np.maximum(crf_context(em, x.sentence_starts, x.crf), -1e4).astype(dtype))

    def f(h):
        z = h @ W.T + b
        return z if target == "logit" else torch.log_softmax(z + context, dim=-1)
    return f


def _attribution_scores(x: RankInput, kind: str, target: str) -> np.ndarray:
    """Per tag z: the mean over z's tokens of the attribution of each unit to that token's score of z."""
    import torch
    from captum.attr import InputXGradient, IntegratedGradients

    h = torch.as_tensor(np.asarray(x.h, dtype=np.float32 if np.asarray(x.h).dtype == np.float32 else np.float64))
    labels = torch.as_tensor(np.asarray(x.labels, dtype=np.int64))
    head = _tag_head(x, target)
    rows = torch.arange(len(labels))

    def f(H):  # (S, N, n) -> (S,): the sum over tokens of each token's score of its own tag
        return head(H)[:, rows, labels].sum(dim=1)

    # Every token's score depends on its own h only, so one "example" holding all tokens gives each token the
    # attribution it has alone (the gradient of the sum at h[t] is the gradient of token t's own score), in one
    # backward pass instead of Captum's one per example.
    H = h[None]
    if kind == "gradxact":
        attr = InputXGradient(f).attribute(H.requires_grad_())[0]
    else:
        attr = IntegratedGradients(f).attribute(H, baselines=torch.zeros_like(H), n_steps=IG_STEPS,
                                                internal_batch_size=4)[0]
    sums, counts = np.zeros((x.n_tags, h.shape[1])), np.bincount(x.labels, minlength=x.n_tags)
    np.add.at(sums, x.labels, attr.detach().numpy().astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts[:, None]).T


def gradxact_scores(x: RankInput, target: str = "logprob") -> np.ndarray:
    """Gradient × activation at the analysis site (Captum's ``InputXGradient`` on the tag head, which equals
    ``LayerGradientXActivation`` on the model's ``encoder_out`` hook point because the tag projection is the only
    thing after it): for each token t of tag z, ∂score_z(t)/∂h[t] · h[t], averaged over z's tokens. score: the
    log-probability of z (``target="logprob"``, softmax taggers) or its raw score (``"logit"``: the emission a
    CRF reads; for it gradient × activation is exactly the contribution W[z,i]·h[t,i]) or its CRF marginal
    (``"marginal"``: log p(y_t = z | x) by forward–backward, as a function of h[t] with the rest of the sentence
    held at its values, ``crf_context``; the default for CRF taggers).

    Returns: float (n, T); NaN columns for tags without tokens."""
    return _attribution_scores(x, "gradxact", target)


def ig_scores(x: RankInput, target: str = "logprob") -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) from h = 0 to h at the analysis site, through Captum's
    ``IntegratedGradients`` on the tag head with ``IG_STEPS`` steps; otherwise as ``gradxact_scores``.

    Returns: float (n, T); NaN columns for tags without tokens."""
    return _attribution_scores(x, "ig", target)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "sensitivity": sensitivity_scores,
    "probeless": probeless_scores,
    "probe": probe_scores,
    "selectivity": selectivity_scores,
    "gradxact": gradxact_scores,
    "ig": ig_scores,
    "random": random_scores,
}
_SEEDED = {"probe", "random"}


def method_scores(name: str, x: RankInput, seed: int = 0, target: str = "logprob") -> np.ndarray:
    """The (n, T) scores of ranking method ``name`` (one of ``METHODS``); ``target`` is the attribution
    methods' token score ("logprob" for softmax taggers; "marginal", the CRF marginal, or "logit", the emission,
    for CRF taggers).

    Raises:
        AnalysisInputError: an unknown method name.
    """
    if name not in METHODS:
        raise AnalysisInputError(f"method {name!r}: expected one of {', '.join(METHODS)}")
    if name in ("gradxact", "ig"):
        return METHODS[name](x, target)
    return METHODS[name](x, seed) if name in _SEEDED else METHODS[name](x)
