"""Neuron-ranking methods of the field as pure functions: (n_tokens × n) unit values plus labels -> (n × T) scores.

A tag's ranking is its score column sorted descending, ties by unit index (``nerve.analysis.ranking.rank_units``),
for every method alike, so that the methods are judged by the same ablation sweep.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nerve.analysis.checks import AnalysisInputError
from nerve.analysis.sensitivity import sensitivity

PROBE_L1_RATIO = 0.5  # elastic net: half L1, half L2 (Dalvi et al. 2019 use both penalties)
PROBE_C = 1.0  # inverse regularisation strength, as scikit-learn's LogisticRegression's
PROBE_TOL = 1e-4  # converged: no component of the objective's minimum-norm subgradient exceeds this
PROBE_MAX_ITER = 10_000  # L-BFGS-B iterations at most (about 600 reach PROBE_TOL on a CoNLL dev split)
PROBE_MEMORY = 100  # L-BFGS-B's correction pairs (maxcor): 100 needed 25 % fewer passes than 20 (bench_probe.py)
PROBE_RESTARTS = 3  # fresh L-BFGS-B starts from where a run stopped short of tol (a failed line search)
# What decides the probe's scores; part of an analysis' fingerprint (``AnalysisSpec.method_options``), so an
# analysis of an older probe (version 1: 30 saga passes from the L2 solution, not converged) is not reused.
PROBE_OPTIONS = {"version": 2, "solver": "L-BFGS-B", "l1_ratio": PROBE_L1_RATIO, "C": PROBE_C, "tol": PROBE_TOL,
                 "max_iter": PROBE_MAX_ITER}


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
    """Dalvi et al. (AAAI 2019), "What is one grain of sand in the desert?": a logistic-regression probe h -> tag
    with an elastic-net penalty, fitted to convergence (``probe_fit``) on the units standardised over the tokens
    (mean 0, standard deviation 1; a constant unit stays 0); unit i scores |coef[z, i]| for tag z. Tags without
    tokens get NaN; with only one tag present every score is 0. The fit is deterministic: ``seed`` is not used.

    Returns: float (n, T)."""
    h = np.asarray(x.h, dtype=np.float64)
    present = np.unique(x.labels)
    out = np.full((h.shape[1], x.n_tags), np.nan)
    if len(present) < 2:
        out[:, present] = 0.0
        return out
    std = h.std(axis=0)
    fit = probe_fit((h - h.mean(axis=0)) / np.where(std > 0, std, 1.0), x.labels)
    coef = fit.coef if len(present) > 2 else np.vstack([-fit.coef[0], fit.coef[0]])
    out[:, fit.classes] = np.abs(coef).T
    return out


@dataclass(frozen=True)
class ProbeFit:
    """A fitted probe: ``coef`` float (K, n) and ``intercept`` (K,) over the sorted ``classes`` (K = their number;
    one row, the second class's, for two classes, as scikit-learn's); ``n_iter`` L-BFGS-B iterations and
    ``n_evals`` evaluations of the objective and its gradient (each one pass over the tokens); ``gradient`` the
    largest component of the objective's minimum-norm subgradient at the end, ``tol`` the tolerance it was held to."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    n_iter: int
    n_evals: int
    gradient: float
    tol: float

    @property
    def converged(self) -> bool:
        """Whether the fit reached its tolerance (``gradient <= tol``)."""
        return self.gradient <= self.tol


def probe_fit(z: np.ndarray, labels: np.ndarray, max_iter: int = PROBE_MAX_ITER, tol: float = PROBE_TOL) -> ProbeFit:
    """The probe of ``probe_scores`` on units z float (N, n) and labels (N,) of at least two classes, fitted to
    convergence. It minimises scikit-learn's elastic-net objective for ``LogisticRegression(C=PROBE_C,
    l1_ratio=PROBE_L1_RATIO)``: C · Σ_t −log p(labels[t] | z[t]) + l1_ratio · |W|₁ + (1 − l1_ratio) / 2 · |W|²,
    multinomial (softmax) for three classes or more, binomial for two; the intercept is not penalised.

    Solver: L-BFGS-B on the same problem made smooth by W = U − V with U, V >= 0 (|W|₁ is then the linear
    Σ U + V at the optimum, where U and V never overlap), from W = 0, restarted (fresh memory) where it stops
    short; converged when no component of the objective's minimum-norm subgradient (zero at the optimum, and
    only there: the L2 part makes the objective strictly convex in W) exceeds ``tol``. A model's own predictions are
    almost separable in its units, which makes the problem ill-conditioned: scikit-learn's saga took 1,783 passes
    (4–5 min) to its tol 1e-4 on a CoNLL dev split and was still 0.36 off in the coefficients; this fit takes
    about 600 iterations (6 s; ``bench/bench_probe.py``). Not converged after ``max_iter`` iterations:
    a ``NerveWarning``, and the last iterate."""
    from scipy.optimize import minimize

    from nerve.errors import warn

    z = np.asarray(z, dtype=np.float64)
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise AnalysisInputError(f"probe: labels of {len(classes)} class; expected at least 2")
    N, n = z.shape
    K = len(classes) if len(classes) > 2 else 1  # the fitted rows
    m, r = K * n, PROBE_L1_RATIO
    zT, onehot = np.ascontiguousarray(z.T), np.zeros((len(classes), N))
    onehot[y, np.arange(N)] = 1.0

    def smooth(W, b):  # C · Σ log-loss and its gradient in W (K, n) and b (K,)
        s = W @ zT + b[:, None]
        s = np.vstack([np.zeros((1, N)), s]) if K == 1 else s  # binomial: the first class scores 0
        top = s.max(axis=0)
        e = np.exp(s - top)
        total = e.sum(axis=0)
        loss = np.log(total).sum() + (top - (s * onehot).sum(axis=0)).sum()  # exact to the last bit when confident
        e = (e / total - onehot)[-K:]  # ∂loss/∂s of the fitted rows
        return PROBE_C * loss, PROBE_C * (e @ z) + (1 - r) * W, PROBE_C * e.sum(axis=1)

    def objective(x):  # x = (U, V, b): the smooth problem and its gradient
        W = x[:m].reshape(K, n) - x[m:2 * m].reshape(K, n)
        loss, gW, gb = smooth(W, x[2 * m:])
        f = loss + r * x[:2 * m].sum() + (1 - r) / 2 * (W * W).sum()
        return f, np.concatenate([(gW + r).ravel(), (r - gW).ravel(), gb])

    def subgradient(W, b) -> float:  # the largest component of the minimum-norm subgradient
        _, gW, gb = smooth(W, b)
        g = np.where(W != 0, gW + r * np.sign(W), np.sign(gW) * np.maximum(np.abs(gW) - r, 0.0))
        return float(max(np.abs(g).max(), np.abs(gb).max()))

    x, n_iter, n_evals, gradient = np.zeros(2 * m + K), 0, 0, np.inf
    for _ in range(PROBE_RESTARTS + 1):
        res = minimize(objective, x, jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * m) + [(None, None)] * K,
                       options={"maxiter": max_iter - n_iter, "maxfun": 2 * max_iter, "gtol": tol, "ftol": 0.0,
                                "maxcor": PROBE_MEMORY})
        x, n_iter, n_evals = res.x, n_iter + res.nit, n_evals + res.nfev
        W = x[:m].reshape(K, n) - x[m:2 * m].reshape(K, n)
        gradient = subgradient(W, x[2 * m:])
        if gradient <= tol or n_iter >= max_iter or res.nit == 0:
            break
    if gradient > tol:
        warn(f"probe: not converged after {n_iter} L-BFGS-B iterations (max_iter {max_iter}): the largest "
             f"subgradient component is {gradient:.2g}, above tol {tol:g}; its unit ranking may not be the optimum's")
    return ProbeFit(W, x[2 * m:].copy(), classes, n_iter, n_evals, gradient, tol)


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

    dtype = np.float32 if np.asarray(x.h).dtype == np.float32 else np.float64  # the activations' precision
    W = torch.as_tensor(np.asarray(x.W, dtype=dtype))
    b = torch.zeros(x.n_tags, dtype=W.dtype) if x.b is None else torch.as_tensor(np.asarray(x.b, dtype=dtype))
    context = torch.as_tensor(np.asarray(_context(x, target), dtype=dtype))  # 0, or the held CRF context (N, T)

    def f(h):
        z = h @ W.T + b
        return z if target == "logit" else torch.log_softmax(z + context, dim=-1)
    return f


def _attribution_scores(x: RankInput, kind: str, target: str) -> np.ndarray:
    """Per tag z: the mean over z's tokens of the attribution of each unit to that token's score of z.

    Every token's score depends on its own h only, and the tag head is affine then log-softmax, so the gradient of
    log_softmax(h·Wᵀ + b + a)[y] at h is W[y] − p·W (p the softmax there; a the CRF context, held), and of the raw
    score ("logit") W[y]. Gradient × activation is h ⊙ that gradient at h; integrated gradients from 0 is
    h ⊙ Σ_s w_s (W[y] − p_s·W), p_s the softmax at α_s·h, with Captum's Gauss–Legendre points α_s and weights w_s
    (``IG_STEPS``): Captum's own sum, in closed form — the tests compare it with Captum's ``InputXGradient`` and
    ``IntegratedGradients`` (bench/bench_attribution.py times both)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    h = np.asarray(x.h, dtype=np.float64)
    labels = np.asarray(x.labels, dtype=np.intp)
    W = np.asarray(x.W, dtype=np.float64)
    b = np.zeros(x.n_tags) if x.b is None else np.asarray(x.b, dtype=np.float64)  # shape: (T,) or (N, T)
    own = W[labels]  # shape: (N, n): the gradient of each token's raw score of its own tag
    if target == "logit":
        grad = own
    else:
        context = _context(x, target)  # shape: (N, T) or 0
        z = h @ W.T  # shape: (N, T): the part of the tag scores that moves along the path
        if kind == "gradxact":
            p = _softmax(z + b + context)
        else:
            steps, alphas = (f(IG_STEPS) for f in approximation_parameters("gausslegendre"))
            p = sum(w * _softmax(a * z + b + context) for w, a in zip(steps, alphas))
            own = own * float(np.sum(steps))
        grad = own - p @ W  # shape: (N, n)
    attr = h * grad
    counts = np.bincount(labels, minlength=x.n_tags)
    order = np.argsort(labels, kind="stable")
    sums = np.zeros((x.n_tags, h.shape[1]))
    present = np.flatnonzero(counts)
    sums[present] = np.add.reduceat(attr[order], np.r_[0, np.cumsum(counts)[:-1]][present], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts[:, None]).T


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _context(x: RankInput, target: str):
    """The CRF context a_t of every token (``target="marginal"``: ``crf_context`` of the actual emissions, held
    along the path; a forbidden tag's −inf as −1e4 so that its weight is 0, not NaN), else 0."""
    if target != "marginal":
        return 0.0
    from nerve.model.crf import crf_context

    if x.crf is None or x.sentence_starts is None:
        raise AnalysisInputError("target 'marginal': expected a CRF model's transitions and sentence starts")
    em = np.asarray(x.h, dtype=np.float64) @ np.asarray(x.W, dtype=np.float64).T
    em = em + (0.0 if x.b is None else np.asarray(x.b, dtype=np.float64))
    return np.maximum(crf_context(em, x.sentence_starts, x.crf), -1e4)


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


def ig_scores(x: RankInput, target: str = "logprob", baseline: np.ndarray | None = None) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) from h = ``baseline`` to h at the analysis site, through
    Captum's ``IntegratedGradients`` on the tag head with ``IG_STEPS`` steps; otherwise as ``gradxact_scores``.

    ``baseline``: float (n,) the point every token's path starts from, the value an intervention gives the units,
    so that IG attributes relative to it (completeness: a token's attributions sum to f(h) − f(baseline)); e.g.
    the ranking split's mean (``interventions.Mean().values(x.h)``) for the mean intervention, and for resample
    too (each unit's resampled value has the scored split's mean as its expectation; IG from that mean is not the
    expectation of IG over the resampled values, which would be expected gradients, Erion et al. 2021). None:
    h = 0 (zero ablation), computed exactly as before a baseline could be given.

    Returns: float (n, T); NaN columns for tags without tokens.

    Raises:
        AnalysisInputError: a baseline not of shape (n,) or not finite."""
    if baseline is None:
        return _attribution_scores(x, "ig", target)
    return _attribution_scores(_from_baseline(x, baseline), "ig", target)


def _from_baseline(x: RankInput, baseline: np.ndarray) -> RankInput:
    """``x`` moved so that its origin is ``baseline`` β: h − β, with the tag bias b + W β. The tag head of the
    result at u is the tag head of ``x`` at u + β (the same affine map, so the CRF context is unchanged too), and
    IG from 0 to h − β of the one is IG from β to h of the other, term by term (Captum integrates
    ∂f(β + α (h − β)) · (h − β)). h keeps its precision (float32 activations stay float32, as Captum's own
    path would)."""
    h = np.asarray(x.h)
    beta = np.asarray(baseline, dtype=np.float64)  # shape: (n,)
    if beta.shape != (h.shape[1],) or not np.isfinite(beta).all():
        raise AnalysisInputError(f"ig baseline: expected {h.shape[1]} finite values (one per unit), got shape "
                                 f"{beta.shape}")
    dtype = np.float32 if h.dtype == np.float32 else np.float64
    W = np.asarray(x.W, dtype=np.float64)  # shape: (T, n)
    b = (np.zeros(x.n_tags) if x.b is None else np.asarray(x.b, dtype=np.float64)) + W @ beta  # shape: (T,)
    return dataclasses.replace(x, h=(h.astype(np.float64) - beta).astype(dtype), b=b)


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
