"""Within-run uncertainty of a finding's per-case statistic, the first of the two levels of evidence.

Matrix statistics (correlation of two tags' sensitivities over units, cosine of their output weights, the margins
and contrasts built from them): a bootstrap over units — the units resampled with replacement, the matrices
recomputed, the statistic's variance over the resamples. The permutation null of ``findings`` answers another
question (is there any association at all, units exchangeable under none) and gives no standard error; the Fisher
z variance 1/(n − 3) holds for one Pearson r of bivariate-normal, independent units, not for a contrast of two
correlations that share a tag, a cosine or a margin through a max. The bootstrap estimates the standard error of
any of them, treating a run's units as draws from the units such a model could have grown.

Ablation statistics: a bootstrap over the scoring split's sentences (``sentence_variance``) from the per-sentence
counts the analysis saves beside the sweeps (ablation_sentences.npz, methods_sentences.npz:
``sentence_counts.SweepCounts``): the sentences resampled with replacement, every recall recomputed as the resampled
right tokens over the resampled gold tokens, the statistic's variance over the resamples. It keeps together what
one sentence's tokens share (the context the tagger reads) and pairs each token before and after the ablation.
Analyses without those files (older folders) get a binomial (delta-method) variance from the tags' token counts
(``ablation_variance``): a drop d of a tag's accuracy over its n tokens is taken as the share of tokens an
ablation turned from right to wrong (a paired difference of 0 or 1 per token): Var = d̃(1 − d̃)/n, with
d̃ = (|d|·n + ½)/(n + 1) so that a drop of 0 keeps a variance. It treats tokens as independent; tokens of one
sentence are not, so it understates the variance when a sentence's tokens go right or wrong together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nerve.tags import entity_types

VAR = re.compile(r"\{(\w+)\}")


def expand(pattern: str, binding: dict) -> str:
    """A tag pattern ("B-{x}") with its variables bound."""
    return VAR.sub(lambda m: binding[m.group(1)], pattern)


def best_other(M_row: np.ndarray, exclude: list[int]) -> np.ndarray:
    """Largest finite value of a row (or of each row of a (..., T) stack) outside ``exclude``; NaN if none."""
    row = np.array(M_row, dtype=np.float64, copy=True)
    row[..., exclude] = np.nan
    best = np.max(np.where(np.isfinite(row), row, -np.inf), axis=-1)
    return np.where(np.isfinite(best), best, np.nan)


def baseline_pairs(clause: dict, tags: Sequence[str], binding: dict) -> list[tuple[str, str]]:
    """The tag pairs of a clause's ``baseline`` (a list of [a, b] patterns) for one case: variables the case
    binds keep their types, the others range over the remaining entity types (distinct from the bound ones and
    from each other); pairs with a missing tag are dropped."""
    out = []
    taken = set(binding.values())
    free_types = [t for t in entity_types(list(tags)) if t not in taken]
    for pa, pb in clause.get("baseline", []):
        free = list(dict.fromkeys(v for v in VAR.findall(pa + pb) if v not in binding))
        combos = [()] if not free else _distinct(free_types, len(free))
        for combo in combos:
            b = binding | dict(zip(free, combo))
            a_tag, b_tag = expand(pa, b), expand(pb, b)
            if a_tag in tags and b_tag in tags and a_tag != b_tag:
                out.append((a_tag, b_tag))
    return out


def _distinct(types: list[str], n: int) -> list[tuple]:
    import itertools

    return list(itertools.permutations(types, n))


def stack_statistic(clause: dict, Ms: np.ndarray, tags: Sequence[str], binding: dict, tt: tuple) -> np.ndarray:
    """The case's statistic on each matrix of a (B, T, T) stack (B,): M[a, b] for compare, the margins of
    is_most and some_exceeds, minus the mean of the clause's baseline pairs when it has one (a contrast)."""
    ix = {t: i for i, t in enumerate(tags)}
    a, b = ix[tt[0]], ix[tt[1]]
    ab = Ms[:, a, b]
    kind = clause["kind"]
    if kind == "compare":
        out = ab
    elif kind == "is_most":
        margins = [ab - best_other(Ms[:, a, :], [a, b])]
        if clause.get("both_ways"):
            margins.append(ab - best_other(Ms[:, b, :], [a, b]))
        stack = np.stack(margins)
        out = np.max(stack, axis=0) if clause.get("negate") else np.min(stack, axis=0)
    else:  # some_exceeds: the best candidate minus M[a, b]
        (free,) = [n for n in VAR.findall(clause["candidates"]) if n not in binding] or [None]
        taken = set(binding.values())
        cands = [ix[c] for t in entity_types(list(tags)) if t not in taken
                 if (c := expand(clause["candidates"], binding | ({free: t} if free else {}))) in ix and c not in tt]
        if not cands:
            return np.full(Ms.shape[0], np.nan)
        vals = Ms[:, a, cands]
        best = np.max(np.where(np.isfinite(vals), vals, -np.inf), axis=1)
        out = np.where(np.isfinite(best), best, np.nan) - ab
    pairs = baseline_pairs(clause, tags, binding)
    if clause.get("baseline"):
        if not pairs:
            return np.full(Ms.shape[0], np.nan)
        base = np.stack([Ms[:, ix[p], ix[q]] for p, q in pairs])
        out = out - base.mean(axis=0)
    return np.asarray(out, dtype=np.float64)


def unit_bootstrap(x: np.ndarray, name: str, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, T, T) matrices of the units resampled with replacement: ``name`` "corr" of sensitivities x
    (n, T), "similarity" of output weights x (T, n)."""
    from nerve.analysis.matrices import corr_matrix, similarity_matrix

    n = x.shape[0] if name == "corr" else x.shape[1]
    idx = rng.integers(0, n, size=(int(resamples), n))
    if name == "corr":
        return np.stack([corr_matrix(x[i]) for i in idx])
    return np.stack([similarity_matrix(x[:, i]) for i in idx])


def bootstrap_variance(values: np.ndarray) -> float | None:
    """Variance (ddof 1) of a statistic over bootstrap resamples; None when fewer than half are finite."""
    v = np.asarray(values, dtype=np.float64)
    fin = v[np.isfinite(v)]
    if fin.size < max(2, v.size // 2):
        return None
    return float(fin.var(ddof=1))


def drop_variance(drop: float, n: int) -> float:
    """Binomial variance of an accuracy drop over n tokens (see the module's text)."""
    d = (abs(drop) * n + 0.5) / (n + 1)
    return d * (1 - d) / n


def ablation_variance(kind: str, ev: Mapping, support: Mapping[str, int], target: str,
                      random_drops: np.ndarray, others: Mapping[str, float]) -> float | None:
    """Within-run variance of an ablation statistic; None without the tags' token counts.

    ablation_vs_random (top drop − the draws' mean drop): the two drops' binomial variances (the tokens are
    the same, so the token part of the mean over draws is one drop's, not 1/D of it) plus the draws' spread / D
    (which units a random draw picks). ablation_selectivity (own drop − the other tags' mean drop): the own
    drop's binomial variance plus the mean of the others', each over its own tokens, divided by their number."""
    n = support.get(target)
    if not n:
        return None
    if kind == "ablation_vs_random":
        rnd = np.asarray(random_drops, dtype=np.float64)
        spread = float(rnd.var(ddof=1)) / rnd.size if rnd.size > 1 else 0.0
        return drop_variance(ev["top_drop"], n) + drop_variance(float(rnd.mean()), n) + spread
    parts = [drop_variance(d, support[t]) for t, d in others.items() if support.get(t)]
    if len(parts) != len(others):
        return None
    return drop_variance(ev["own_drop"], n) + float(np.sum(parts)) / len(parts) ** 2


@lru_cache(maxsize=4)
def sentence_weights(n_sentences: int, resamples: int, seed: int) -> np.ndarray:
    """float64 (resamples, S), read-only: how many times each of S sentences is drawn in each bootstrap resample
    (S draws with replacement: multinomial counts). Drawn as ``rng.integers(0, S, (resamples, S))`` of
    ``stats.case_rng(seed, "sentences")``, so a plain loop over those indices gives the same resamples; the same
    for every case of a run."""
    from nerve.analysis.stats import case_rng

    S, B = int(n_sentences), int(resamples)
    idx = case_rng(seed, "sentences").integers(0, S, size=(B, S)) if S else np.zeros((B, 0), np.int64)
    flat = (idx + np.arange(B)[:, None] * S).ravel()
    w = np.bincount(flat, minlength=B * S).reshape(B, S).astype(np.float64)
    w.flags.writeable = False
    return w


@dataclass(frozen=True)
class SentenceCase:
    """One ablation case for the sentence bootstrap: the clause ``kind`` (ablation_vs_random or
    ablation_selectivity), the judged ``k``, the ``target`` tag and, for selectivity, the ``others``."""

    kind: str
    k: int
    target: str
    others: tuple[str, ...] = ()


def sentence_statistics(case: SentenceCase, counts, weights: np.ndarray) -> np.ndarray:
    """(B,) the ablation statistic of ``case.target`` at ``case.k`` on each resample of the sentences
    (``weights`` (B, S), ``sentence_weights``); ``counts``: a ``sentence_counts.SweepCounts`` holding k and the
    target. A recall is the weighted right tokens over the weighted gold tokens (NaN in a resample without a gold
    token of the tag).

    ablation_vs_random: (recall at 0 − top-k recall) − (recall at 0 − the draws' mean recall at k).
    ablation_selectivity: the own drop − the mean drop of ``others`` under the target's top-k ablation (the mean
    over those with a gold token in the resample)."""
    kind, k, target, others = case.kind, case.k, case.target, case.others
    i, z = counts.ks.index(int(k)), counts.targets.index(target)
    col = {t: j for j, t in enumerate(counts.tags)}
    vs_random = kind == "ablation_vs_random"
    if vs_random and not counts.draws:
        return np.full(weights.shape[0], np.nan)
    cols = [col[target], *([] if vs_random else [col[o] for o in others])]
    parts = [counts.gold[:, cols], counts.base[:, cols], counts.top[i, z][:, cols]]
    if vs_random:
        parts.append(counts.random[i][:, cols])
    # one product for every count needed: (B, S) @ (S, parts x cols), then per part (B, cols)
    summed = weights @ np.concatenate(parts, axis=1).astype(np.float64)
    gold, base, top, *rnd = np.split(summed, len(parts), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        drops = (base - top) / gold  # shape: (B, cols); the target's first
        if vs_random:
            return drops[:, 0] - (base[:, 0] - rnd[0][:, 0] / counts.draws) / gold[:, 0]
        fin = np.isfinite(drops[:, 1:])
        mean = np.where(fin, drops[:, 1:], 0.0).sum(axis=1) / fin.sum(axis=1)
    return drops[:, 0] - mean


def sentence_variance(case: SentenceCase, counts, random_drops: np.ndarray, resamples: int,
                      seed: int) -> float | None:
    """Within-run variance of an ablation statistic by a bootstrap over sentences: the variance of
    ``sentence_statistics`` over ``resamples`` resamples (``sentence_weights``), plus for ablation_vs_random the
    draws' spread / D (which units a random draw picks; ``random_drops``: the draws' drops), as in
    ``ablation_variance``. None when fewer than half the resamples give a finite statistic."""
    w = sentence_weights(counts.gold.shape[0], resamples, seed)
    var = bootstrap_variance(sentence_statistics(case, counts, w))
    if var is None or case.kind != "ablation_vs_random":
        return var
    rnd = np.asarray(random_drops, dtype=np.float64)
    return var + (float(rnd.var(ddof=1)) / rnd.size if rnd.size > 1 else 0.0)


def finite_or_none(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)
