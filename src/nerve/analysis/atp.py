"""How well each ranking method's per-unit score predicts the exact effect of intervening on that unit alone, and
how far attribution patching's first-order estimate of that effect is from it (AtP: Nanda 2023, "Attribution
patching: activation patching at industrial scale"; Kramár, Lieberum, Shah & Nanda 2024, "AtP*: an efficient
and scalable method for localizing LLM behaviour to components"; Syed, Rager & Conmy 2023, "Attribution patching
outperforms automated circuit discovery").

The effect of unit i on tag z under an intervention (zero, mean, resample: each token's units set to their
``values``) is the change in z's summed score over z's tokens of the scoring split when unit i alone takes its
value: Σ_{t: y_t = z} f_z(h_t + δ_ti e_i) − f_z(h_t), δ_ti = value_ti − h_ti. The tag head is affine, so the
edit is a rank-1 change of every token's logits, L_t + δ_ti W[:, i], and every unit's exact effect is computed at
once, in float64, by chunks of tokens. f_z is the log-probability of z (``"logprob"``: log_softmax of
h W^T + b, a softmax tagger's output), the raw tag score (``"logit"``: linear, so AtP is exact), or for a CRF
tagger the CRF marginal with the rest of each sentence held at its values (``"marginal"``: log_softmax(e_t + a_t),
a_t from ``crf_context`` of the unintervened emissions: the attribution methods' own target). The intervention
also moves a_t through the other tokens of the sentence; that part is not counted (it takes one forward–backward
pass over the split per unit, and AtP through it the gradient of the forward–backward).

The AtP estimate is the first-order term: Σ_t ∇_h f_z(h_t) · δ_t, unit by unit, i.e. gradient × (intervention
value − activation). A unit's importance for a ranking is the drop its intervention causes (−effect), so the
correlations are with the drop, and the AtP row ranks by the estimated drop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.checks import Activations, AnalysisInputError
from nerve.analysis.judging import dicts_csv
from nerve.analysis.ranking import rank_units
from nerve.io import atomic_write_text

ATP = "atp"  # the method name of the AtP estimate's own rows
ATP_TOP = 10  # the top-k compared with the ranking by exact effect
ATP_TARGETS = ("logprob", "logit", "marginal")
ATP_FIELDS = ("ablate", "target", "target_tag", "method", "n_tokens", "spearman", "top_k", "top_overlap",
              "mean_abs_gap", "mean_abs_effect")
CHUNK_ELEMENTS = 1 << 22  # (tokens × units × tags) float64 values at once: 32 MiB


@dataclass(frozen=True)
class AtPInput:
    """The scoring split and an intervention: h float (N, n) unit values, labels int (N,) tag ids (gold: the
    tokens whose score is summed per tag), W (T, n) and b (T,) or None the tag projection, values: what an
    intervened unit becomes (None: 0; (n,) one per unit; (N, n) one per token, e.g. resample's), target one of
    ``ATP_TARGETS``, context float (N, T) a_t for ``"marginal"`` (``crf_marginal_context``)."""

    h: np.ndarray
    labels: np.ndarray
    W: np.ndarray
    b: np.ndarray | None = None
    values: np.ndarray | None = None
    target: str = "logprob"
    context: np.ndarray | None = None


def crf_marginal_context(h: np.ndarray, W: np.ndarray, b: np.ndarray | None, crf: tuple,
                         sentence_starts: np.ndarray) -> np.ndarray:
    """float64 (N, T): a_t of ``crf_context`` for the emissions h W^T + b, clipped at −1e4 as the attribution
    methods' (a tag the constraints forbid has a_t = −inf; a large finite value keeps its gradient 0)."""
    from nerve.model.crf import crf_context

    em = np.asarray(h, dtype=np.float64) @ np.asarray(W, dtype=np.float64).T  # shape: (N, T)
    em = em + (0.0 if b is None else np.asarray(b, dtype=np.float64))
    return np.maximum(crf_context(em, sentence_starts, crf), -1e4)


def atp_input(score: Activations, values: np.ndarray | None, target: str | None = None,
              bucket: str = "gold") -> AtPInput:
    """``AtPInput`` of a scoring split's activations: labels gold (``bucket="predicted"``: the model's own tags),
    target "marginal" for CRF taggers and "logprob" otherwise (``heldout.default_target``) unless given."""
    target = target or ("marginal" if score.crf is not None else "logprob")
    context = (crf_marginal_context(score.h, score.W, score.b, score.crf, score.sentence_starts)
               if target == "marginal" else None)
    return AtPInput(score.h, score.gold if bucket == "gold" else score.pred, score.W, score.b, values, target,
                    context)


def _checked(x: AtPInput) -> tuple[np.ndarray, ...]:
    h, W = np.asarray(x.h, dtype=np.float64), np.asarray(x.W, dtype=np.float64)
    labels = np.asarray(x.labels, dtype=np.intp)
    if h.ndim != 2 or W.ndim != 2 or W.shape[1] != h.shape[1] or labels.shape != (h.shape[0],):
        raise AnalysisInputError(f"atp: expected h (N, n), W (T, n), labels (N,); got {h.shape}, {W.shape}, "
                                 f"{labels.shape}")
    N, T = len(h), len(W)
    if N and (labels.min() < 0 or labels.max() >= T):
        raise AnalysisInputError(f"atp: labels outside 0..{T - 1}")
    if x.target not in ATP_TARGETS:
        raise AnalysisInputError(f"atp target {x.target!r}: expected one of {', '.join(ATP_TARGETS)}")
    logits = h @ W.T + (0.0 if x.b is None else np.asarray(x.b, dtype=np.float64))  # shape: (N, T)
    if x.target == "marginal":
        if x.context is None or np.shape(x.context) != (N, T):
            raise AnalysisInputError(f"atp target 'marginal': expected a context of shape ({N}, {T})")
        logits = logits + np.asarray(x.context, dtype=np.float64)
    values = None if x.values is None else np.asarray(x.values, dtype=np.float64)
    if values is not None and values.shape not in ((h.shape[1],), h.shape):
        raise AnalysisInputError(f"atp values: expected shape ({h.shape[1]},) or {h.shape}, got {values.shape}")
    return h, W, labels, logits, values


def unit_effects(x: AtPInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unit's exact single-unit intervention effect on every tag, and its AtP estimate (module docstring).

    Returns:
        (exact, estimate, counts): float64 (n, T) each, Σ over tag z's tokens of the change of f_z (NaN columns
        for tags without tokens), and int (T,) the tokens of each tag.

    Raises:
        AnalysisInputError: shapes that do not fit, labels outside the tags, an unknown target, "marginal"
            without its context.
    """
    from scipy.special import log_softmax

    h, W, labels, logits, values = _checked(x)
    (N, n), T = h.shape, len(W)
    exact, estimate = np.zeros((T, n)), np.zeros((T, n))
    step = max(1, CHUNK_ELEMENTS // max(1, n * T))
    for a in range(0, N, step):
        c = slice(a, min(N, a + step))
        y = labels[c]
        delta = (0.0 if values is None else (values if values.ndim == 1 else values[c])) - h[c]  # shape: (c, n)
        gain = delta * W[y]  # shape: (c, n), the change of the logit of the token's own tag
        if x.target == "logit":
            effect, grad = gain, W[y]  # shape: (c, n) each
        else:
            logp = log_softmax(logits[c], axis=1)  # shape: (c, T)
            # log p_z after the edit = log p_z + δ W[z, i] − log Σ_j p_j exp(δ W[j, i])
            arg = W[:, None, :] * delta[None]  # shape: (T, c, n), tags first: the reductions run over whole rows
            arg += logp.T[:, :, None]
            top = arg.max(axis=0)  # shape: (c, n)
            arg -= top
            shift = np.log(np.exp(arg, out=arg).sum(axis=0)) + top  # shape: (c, n), logsumexp over the tags
            effect, grad = gain - shift, W[y] - np.exp(logp) @ W  # shape: (c, n) each
        onehot = np.zeros((T, len(y)))
        onehot[y, np.arange(len(y))] = 1.0
        exact += onehot @ effect
        estimate += onehot @ (grad * delta)
    counts = np.bincount(labels, minlength=T)[:T]
    exact[counts == 0], estimate[counts == 0] = np.nan, np.nan
    return exact.T, estimate.T, counts


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two (n,) score vectors (average ranks for ties); None where either has a
    NaN, is constant, or has fewer than 2 values."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.isnan(a).any() or np.isnan(b).any():
        return None
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / den) if den > 0 else None


def atp_rows(x: AtPInput, tags: Sequence[str], method_scores: Mapping[str, np.ndarray], ablate: str = "",
             top: int = ATP_TOP) -> list[dict]:
    """Per tag z with tokens: one row for the AtP estimate (method ``ATP``) and one per ranking method that ranks
    z (its score column not all NaN), fields ``ATP_FIELDS``:

    - ``spearman``: the rank correlation of the method's scores (for ``ATP``: the estimated drop, −estimate)
      with the exact drop (−exact effect) over the units (None where undefined);
    - ``top_overlap``: |top_k of the method's ranking (``rank_units``) ∩ top_k by exact drop| / k,
      k = ``top_k`` = min(top, n);
    - ``mean_abs_gap`` (``ATP`` only, else None): mean over units of |estimate − exact|;
    - ``mean_abs_effect``: mean over units of |exact| (the scale of the gap), ``n_tokens`` z's tokens,
      ``ablate`` the intervention's name (as given), ``target`` the score f.

    Args:
        x: the scoring split and the intervention's values (``atp_input``).
        tags: (T,) tag names; method_scores: {method: float (n, T)} scores from the ranking split
            (``heldout.method_score_matrices``).
    """
    exact, estimate, counts = unit_effects(x)
    n, T = exact.shape
    if len(tags) != T:
        raise AnalysisInputError(f"atp: expected {T} tag names, got {len(tags)}")
    bad = [m for m, s in method_scores.items() if np.shape(s) != (n, T)]
    if bad:
        raise AnalysisInputError(f"atp: {bad[0]}'s scores: expected shape ({n}, {T}), got "
                                 f"{np.shape(method_scores[bad[0]])}")
    k = min(int(top), n)
    out = []
    for z in np.flatnonzero(counts):
        drop = -exact[:, z]  # shape: (n,)
        truth = set(rank_units(drop[:, None])[0, :k].tolist())
        cell = {"ablate": ablate, "target": x.target, "target_tag": str(tags[z]), "n_tokens": int(counts[z]),
                "top_k": k, "mean_abs_effect": float(np.abs(exact[:, z]).mean())}
        judged = [(ATP, -estimate[:, z], float(np.abs(estimate[:, z] - exact[:, z]).mean()))]
        for m, s in method_scores.items():
            col = np.asarray(s, dtype=np.float64)[:, z]  # shape: (n,)
            if not np.isnan(col).all():
                judged.append((m, col, None))
        for method, score, gap in judged:
            ranked = set(rank_units(score[:, None])[0, :k].tolist())
            out.append({**cell, "method": method, "spearman": spearman(score, drop),
                        "top_overlap": len(ranked & truth) / k if k else None, "mean_abs_gap": gap})
    return out


def atp_csv(rows: list[dict]) -> str:
    """Text of ``atp.csv``: header ``ATP_FIELDS``, one line per ``atp_rows`` row."""
    return dicts_csv(rows, ATP_FIELDS)


def write_atp_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write ``atp_csv(rows)`` to ``path`` atomically."""
    atomic_write_text(path, atp_csv(rows))
