"""Two levels of evidence combined: per-run estimates y_i with within-run variances v_i, pooled across runs by a
random-effects meta-analysis with the Hartung–Knapp–Sidik–Jonkman (HKSJ) adjustment (statsmodels'
``combine_effects``, Paule–Mandel tau²), or by a fixed-effect (inverse-variance) combination for the runs at hand;
verdicts against a smallest effect of interest (SESOI) with Holm's step-down over a study's cases.

The rules (docs/STATISTICS.md has them with references):

- ``random_effects``: tau² by Paule–Mandel; the standard error is HKSJ's with the Knapp–Hartung (2003) ad hoc
  truncation, se² = max(HKSJ variance, the plain random-effects variance 1/Σw_i): it never falls below what the
  within-run variances alone give (so zero spread across runs never gives a p of 0); t with k − 1 degrees of
  freedom. Population: models of this architecture trained with other seeds.
- ``fixed_effect``: inverse-variance mean of the runs at hand, normal reference. Population: these trained
  models (the sentences and units they were measured on are the sample).
- ``decide``: one two-sided interval at level 1 − α_j per case; **holds** when it lies beyond +δ in the claimed
  direction, **contradicted** beyond δ the other way, **negligible** inside (−δ, +δ) (two one-sided tests, each
  at α_j / 2), else **inconclusive**. Its p is 2 · the smallest of the three one-sided p-values (capped at 1), so
  that p < α_j exactly when the interval reaches a region.
- ``holm_steps``: Holm's step-down on those p; a case decided at step j is judged at α_j = α / (m − j + 1); the
  cases left undecided are judged (and their intervals drawn) at the level where the procedure stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from statsmodels.stats.meta_analysis import combine_effects

from nerve.analysis.stats import holm

HOLDS, CONTRADICTED, NEGLIGIBLE, INCONCLUSIVE, NOT_TESTABLE = (
    "holds", "contradicted", "negligible", "inconclusive", "cannot be tested")
MOST = "holds for most"  # a clause's (never a case's) verdict: an "all" claim that holds in a majority of its cases
SEEDS = "models of this architecture trained with other seeds"
THESE = "these trained models"
_TINY = 1e-12  # relative: spread or variance below this is none


@dataclass(frozen=True)
class Estimate:
    """A combined effect: effect, its standard error, the reference distribution's df (inf: normal), the number
    of runs k, tau² (between-run variance; 0 for a fixed effect), the method in words, the population it speaks
    for, and ``reason`` (None, or why it cannot be tested — then effect may be set and se is NaN)."""

    effect: float
    se: float
    df: float
    k: int
    tau2: float
    method: str
    population: str
    reason: str | None = None

    @property
    def testable(self) -> bool:
        return self.reason is None

    def crit(self, alpha: float) -> float:
        """Two-sided critical value at level 1 − alpha."""
        q = 1 - alpha / 2  # scipy.special: the t and normal quantiles without scipy.stats' per-call overhead
        return float(special.ndtri(q) if math.isinf(self.df) else special.stdtrit(self.df, q))

    def interval(self, alpha: float) -> tuple[float, float]:
        """Two-sided (1 − alpha) interval; (NaN, NaN) when not testable."""
        if not self.testable:
            return math.nan, math.nan
        h = self.crit(alpha) * self.se
        return self.effect - h, self.effect + h

    def sf(self, t: float) -> float:
        """P(T > t) under the reference distribution."""
        return float(special.ndtr(-t) if math.isinf(self.df) else special.stdtr(self.df, -t))


@dataclass(frozen=True)
class Decision:
    """A case judged against ±delta in the claimed direction (``sign`` +1: the claim is effect > threshold + delta,
    −1: effect < threshold − delta): verdict, the level alpha it was judged at, the matching interval, the one-sided
    p of each region, the decision p (2 · their minimum, ≤ 1) and the t of the claim's test."""

    verdict: str
    alpha: float
    interval: tuple[float, float]
    p_holds: float
    p_contradicted: float
    p_negligible: float
    p: float
    t: float


def _clean(y: Sequence[float], v: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError(f"expected y and v of one shape (k,), got {y.shape} and {v.shape}")
    if np.any(v < 0):
        raise ValueError("expected within-run variances >= 0")
    ok = np.isfinite(y) & np.isfinite(v)
    return y[ok], v[ok]


def _scale(y: np.ndarray, v: np.ndarray) -> float:
    return max(1.0, float(np.abs(y).max(initial=0.0))) ** 2


def fixed_effect(y: Sequence[float], v: Sequence[float]) -> Estimate:
    """Inverse-variance (fixed-effect) mean of the runs at hand with a normal reference: the within-run evidence
    alone, for these trained models. Not testable without runs, or when a run's within-run variance is 0 (or
    unknown: the caller passes 0), since its weight would be infinite."""
    y, v = _clean(y, v)
    k = int(y.size)
    method = "fixed-effect inverse-variance mean, z"
    if not k:
        return Estimate(math.nan, math.nan, math.inf, 0, 0.0, method, THESE, "no run")
    if np.any(v <= _TINY * _scale(y, v)):
        return Estimate(float(y.mean()), math.nan, math.inf, k, 0.0, method, THESE,
                        "no within-run variance (a run's statistic has no uncertainty of its own)")
    w = 1.0 / v
    return Estimate(float(w @ y / w.sum()), float(math.sqrt(1.0 / w.sum())), math.inf, k, 0.0, method, THESE)


def random_effects(y: Sequence[float], v: Sequence[float]) -> Estimate:
    """Random-effects mean over runs (Paule–Mandel tau², HKSJ standard error with the Knapp–Hartung truncation,
    t with k − 1 df) via ``statsmodels.stats.meta_analysis.combine_effects``: for models of this architecture
    trained with other seeds.

    Cannot be tested with fewer than 2 runs, or when the runs do not vary and have no within-run variance. A
    within-run variance of 0 beside others is floored at 1e-12 of the largest variance or spread (its run then
    weighs the most, as it should, without an infinite weight)."""
    y, v = _clean(y, v)
    k = int(y.size)
    method = f"random-effects mean (Paule–Mandel tau², Hartung–Knapp–Sidik–Jonkman), t({max(k - 1, 0)})"
    if k < 2:
        return Estimate(float(y[0]) if k else math.nan, math.nan, math.nan, k, math.nan, method, SEEDS,
                        "one run: no variation across seeds to measure (it needs at least 2 runs)")
    spread = float(np.var(y, ddof=1))
    scale = _scale(y, v)
    if spread <= _TINY * scale and float(v.max()) <= _TINY * scale:
        return Estimate(float(y.mean()), math.nan, k - 1.0, k, 0.0, method, SEEDS,
                        "no spread across runs and no within-run variance (the same model counted twice?)")
    floor = _TINY * max(float(v.max()), spread)
    v = np.maximum(v, floor)
    with np.errstate(divide="ignore", invalid="ignore"):  # its I² divides by Q, 0 when the runs agree
        res = combine_effects(y, v, method_re="pm", use_t=True, maxiter=500, atol=1e-10)
    tau2 = float(res.tau2)
    var = max(float(res.var_hksj_re), float(res.var_eff_w_re))
    return Estimate(float(res.mean_effect_re), math.sqrt(var), k - 1.0, k, tau2, method, SEEDS)


def decide(est: Estimate, threshold: float, sign: int, delta: float, alpha: float) -> Decision:
    """Judge ``est`` at level ``alpha`` against the regions of a claim "effect − threshold, times sign, > delta".

    The interval is the two-sided (1 − alpha) interval of ``est``; see the module's rules."""
    if delta < 0 or sign not in (1, -1):
        raise ValueError("expected delta >= 0 and sign +1 or -1")
    nan = math.nan
    if not est.testable:
        return Decision(NOT_TESTABLE, alpha, (nan, nan), nan, nan, nan, nan, nan)
    d = sign * (est.effect - threshold)  # oriented: > 0 in the claimed direction
    p_hold = est.sf((d - delta) / est.se)
    p_contra = est.sf((-d - delta) / est.se)
    p_neg = max(est.sf((d + delta) / est.se), est.sf((delta - d) / est.se)) if delta > 0 else 1.0
    p = min(1.0, 2 * min(p_hold, p_contra, p_neg))
    lo, hi = est.interval(alpha)
    olo, ohi = sorted((sign * (lo - threshold), sign * (hi - threshold)))
    if olo > delta:
        verdict = HOLDS
    elif ohi < -delta:
        verdict = CONTRADICTED
    elif delta > 0 and -delta < olo and ohi < delta:
        verdict = NEGLIGIBLE
    else:
        verdict = INCONCLUSIVE
    return Decision(verdict, alpha, (lo, hi), p_hold, p_contra, p_neg, p, (d - delta) / est.se)


def holm_steps(p: Sequence[float], alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down (Holm 1979) at family-wise level ``alpha`` over the finite entries of ``p`` (NaN: not a
    test). Returns (rejected: bool, level: the alpha_j each entry is judged at — alpha / (m − j + 1) for the one
    rejected at step j, alpha / (m − r) for the rest when r were rejected; NaN for NaN entries). A case is rejected
    exactly when its Holm-adjusted p (``stats.holm``) is below alpha."""
    p = np.asarray(p, dtype=np.float64)
    rejected = holm(p) < alpha  # NaN compares False
    level = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, r = order.size, int(rejected.sum())
    level[order[:r]] = alpha / (m - np.arange(r))
    if r < m:
        level[order[r:]] = alpha / (m - r)
    return rejected, level


def holm_decide(estimates: Sequence[Estimate], thresholds: Sequence[float], signs: Sequence[int],
                deltas: Sequence[float], alpha: float) -> tuple[list[Decision], np.ndarray]:
    """Every case decided under Holm at family-wise ``alpha``: (decisions with intervals at each case's Holm
    level, Holm-adjusted p). A case not testable keeps verdict "cannot be tested" and does not count in m."""
    first = [decide(e, t, s, d, alpha) for e, t, s, d in zip(estimates, thresholds, signs, deltas)]
    p = np.array([dec.p for dec in first])
    adjusted = holm(p)
    _, level = holm_steps(p, alpha)
    out = [dec if not math.isfinite(a) else decide(e, t, s, d, float(a))
           for dec, a, e, t, s, d in zip(first, level, estimates, thresholds, signs, deltas)]
    return out, adjusted


def p_text(p: float | None, floor: float | None = None, floor_label: str | None = None) -> str:
    """A p-value in two significant digits (scientific below 0.001), "–" for none; at or below ``floor`` (the
    smallest p its method can give, e.g. 1/(draws + 1)) "< label", ``floor_label`` (default the floor) as label."""
    if p is None or not math.isfinite(p):
        return "–"
    if p <= 0:  # below the smallest double: the t or normal tail underflowed
        return "< 1e-300"
    if floor is not None and p <= floor * (1 + 1e-9):
        return f"< {floor_label or f'{floor:.2g}'}"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
