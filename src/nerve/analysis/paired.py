"""Paired comparison of ranking methods across seeds (issue 31): per ablation value, score and tag (and over the
entity tags), method A − method B on the area over k (``auc`` of ``judging.judge_methods``: the mean own drop over
k = 0..K, in score units), each run's difference a paired observation, with an interval, a verdict against a
smallest effect of interest and Holm's correction over every comparison of the call.

The statistics are ``meta``'s (docs/STATISTICS.md §3–4): the per-run differences y_i = auc_A − auc_B are combined
by ``meta.random_effects`` with within-run variance v_i = 0 (a run's auc has none today), which is exactly the
paired t-test over runs (HKSJ's limit: mean, sd/√n, t with n − 1 df; ``scipy.stats.ttest_rel`` on the same numbers
gives the same p); ``meta.holm_decide`` judges each comparison at its Holm level with threshold 0 and ±delta:
"A better" (the interval lies above +delta), "B better" (below −delta), "negligible" (inside (−delta, +delta):
equivalence), "inconclusive", or "cannot be tested" (fewer than 2 runs with both methods, or the same difference
in every run: no spread to measure). Population: models of this architecture trained with other seeds.

Ties and ceilings are reported beside each comparison, never folded into it: ``ties`` counts the cases (a tag in a
run) whose two aucs are equal, ``ceiling_a``/``ceiling_b`` those where the method's top k units drive the tag's
score to 0 at the judged k (own drop = baseline: no larger drop is possible, so a method at the ceiling may be
better than its auc says), ``ceiling_both`` those where both do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.judging import dicts_csv
from nerve.analysis.meta import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    NEGLIGIBLE,
    NOT_TESTABLE,
    Estimate,
    holm_decide,
    random_effects,
)
from nerve.tags import entity_type, tag_order

A_BETTER, B_BETTER = "A better", "B better"
VERDICTS = {HOLDS: A_BETTER, CONTRADICTED: B_BETTER, NEGLIGIBLE: NEGLIGIBLE, INCONCLUSIVE: INCONCLUSIVE,
            NOT_TESTABLE: NOT_TESTABLE}
OVERALL = "overall"  # target_tag of the comparison of the mean over entity tags
# δ in auc units (a mean drop over k, so a recall or F1 drop): STATISTICS.md's δ for an accuracy drop, two tokens
# of a hundred; a method whose curve lies 0.02 below another's on average is no better in any sense we report.
DELTA = 0.02
ALPHA = 0.05
JUDGED = 10  # the judged k of the ceilings: the top-10 units of finding 9 and of the report's verdicts
TIE_TOL = 1e-12
CEILING_TOL = 1e-9
TEST = "paired t over runs (random-effects HKSJ with no within-run variance)"
PAIRED_FIELDS = ("ablate", "score", "target_tag", "method_a", "method_b", "n_runs", "n_tags", "mean_a", "mean_b",
                 "diff", "sd_diff", "se", "df", "alpha", "lo", "hi", "p_zero", "p", "p_holm", "m", "delta",
                 "verdict", "better", "k", "n_cases", "ties", "ceiling_a", "ceiling_b", "ceiling_both", "test",
                 "reason")


def _index(per_run: Sequence[list[dict]], k: int) -> tuple[dict, dict]:
    """({(run, method, ablate, score, tag): {"auc", "at_ceiling"}}, {(run, method, ablate, score): its tags}): the
    auc of any row (it is the same for every k of a tag) and whether the own drop at ``k`` reaches the baseline
    (None without a row at ``k``)."""
    cells: dict[tuple, dict] = {}
    tagsets: dict[tuple, set] = {}
    for i, run in enumerate(per_run):
        for r in run:
            key = (i, r["method"], r["ablate"], r["score"])
            tagsets.setdefault(key, set()).add(r["target_tag"])
            cell = cells.setdefault((*key, r["target_tag"]), {"auc": float(r["auc"]), "at_ceiling": None})
            if int(r["k"]) == k:
                cell["at_ceiling"] = bool(r["own_drop"] >= r["baseline"] - CEILING_TOL)
    return cells, tagsets


def _common_tags(tagsets: dict, n_runs: int, a: str, b: str, ablate: str, score: str
                 ) -> tuple[list[int], list[str]]:
    """(the runs where both methods were judged, the entity tags judged for both in every one of them)."""
    empty: set = set()
    both = {i: tagsets.get((i, a, ablate, score), empty) & tagsets.get((i, b, ablate, score), empty)
            for i in range(n_runs)}
    runs = [i for i in range(n_runs) if (i, a, ablate, score) in tagsets and (i, b, ablate, score) in tagsets]
    common = set.intersection(*(both[i] for i in runs)) if runs else empty
    tags = [t for t in common if entity_type(t) is not None]
    return runs, [tags[j] for j in tag_order(tags)]


def _values(index: dict, runs: list[int], method: str, ablate: str, score: str, tags: list[str]) -> np.ndarray:
    # shape: (runs, tags); NaN where the method has no row for the tag in that run
    nan = {"auc": math.nan}
    return np.array([[index.get((i, method, ablate, score, t), nan)["auc"] for t in tags] for i in runs],
                    dtype=np.float64).reshape(len(runs), len(tags))


def _ceilings(index: dict, runs: list[int], method: str, ablate: str, score: str, tags: list[str]) -> np.ndarray:
    # shape: (runs, tags) of bool; False where there is no row at the judged k (the count is then a lower bound)
    return np.array([[bool(index.get((i, method, ablate, score, t), {}).get("at_ceiling")) for t in tags]
                     for i in runs], dtype=bool).reshape(len(runs), len(tags))


def _estimate(y: np.ndarray, a: str, b: str) -> Estimate:
    """``meta.random_effects`` of the per-run differences with v_i = 0 (the paired t), its reasons in this
    comparison's words."""
    est = random_effects(y, np.zeros_like(y))
    if est.testable:
        return est
    if y.size < 2:
        why = (f"{y.size} run{'s' * (y.size != 1)} with both {a} and {b}: a paired comparison across seeds needs "
               "at least 2")
    else:
        why = (f"{a} − {b} is {float(y[0]):.6g} in every run: no spread across runs to measure (identical "
               "curves, or both at the ceiling?)")
    return Estimate(est.effect, math.nan, est.df, est.k, est.tau2, est.method, est.population, why)


def _case(index: tuple[dict, dict], n_runs: int, a: str, b: str, cell: tuple[str, str, str], k: int
          ) -> tuple[dict, Estimate]:
    """One comparison before Holm: its counts and estimate. ``cell``: (ablate, score, tag or OVERALL)."""
    (cells, tagsets), (ablate, score, tag) = index, cell
    runs, tags = _common_tags(tagsets, n_runs, a, b, ablate, score)
    if tag != OVERALL:
        runs = [i for i in runs if (i, a, ablate, score, tag) in cells and (i, b, ablate, score, tag) in cells]
        tags = [tag]
    runs = runs if tags else []
    va, vb = (_values(cells, runs, m, ablate, score, tags) for m in (a, b))  # shape: (runs, tags)
    ca, cb = (_ceilings(cells, runs, m, ablate, score, tags) for m in (a, b))
    y = (va - vb).mean(axis=1) if va.size else np.zeros(0)  # shape: (runs,); per run the mean over tags of A − B
    row = {"ablate": ablate, "score": score, "target_tag": tag, "method_a": a, "method_b": b,
           "n_runs": int(y.size), "n_tags": len(tags) if runs else 0,
           "mean_a": _num(va.mean()) if va.size else None, "mean_b": _num(vb.mean()) if vb.size else None,
           "sd_diff": _num(y.std(ddof=1)) if y.size > 1 else None, "k": int(k), "n_cases": int(va.size),
           "ties": int(np.sum(np.abs(va - vb) <= TIE_TOL)), "ceiling_a": int(ca.sum()), "ceiling_b": int(cb.sum()),
           "ceiling_both": int(np.sum(ca & cb)), "test": f"{TEST}, t({max(y.size - 1, 0)})"}
    est = _estimate(y, a, b)
    if not tags and est.reason:  # no runs because no tag: say so
        est = Estimate(est.effect, est.se, est.df, est.k, est.tau2, est.method, est.population,
                       f"no entity tag judged for both {a} and {b} in every run")
    return row, est


def _num(x: float) -> float | None:
    """A float, None for NaN (an empty CSV cell)."""
    return float(x) if math.isfinite(x) else None


def _finish(row: dict, est: Estimate, dec, adjusted: float, m: int, delta: float) -> dict:
    """A comparison's row completed with its estimate, Holm decision and adjusted p."""
    verdict = VERDICTS[dec.verdict]
    better = {A_BETTER: row["method_a"], B_BETTER: row["method_b"]}.get(verdict)
    p_zero = min(1.0, 2 * est.sf(abs(est.effect) / est.se)) if est.testable and est.se > 0 else math.nan
    return {**row, "diff": _num(est.effect), "se": _num(est.se), "df": _num(est.df), "alpha": _num(dec.alpha),
            "lo": _num(dec.interval[0]), "hi": _num(dec.interval[1]), "p_zero": _num(p_zero),
            "p": _num(dec.p), "p_holm": _num(adjusted), "m": m, "delta": float(delta), "verdict": verdict,
            "better": better, "reason": est.reason}


def _cells(per_run: Sequence[list[dict]], scores: Sequence[str] | None, tags: Sequence[str] | None,
           overall: bool) -> list[tuple[str, str, str]]:
    """(ablate, score, tag) in row order (tags in ``tag_order``; by default the entity tags), OVERALL last."""
    rows = [r for run in per_run for r in run]
    ablates = list(dict.fromkeys(r["ablate"] for r in rows))
    found = list(dict.fromkeys(r["score"] for r in rows))
    scores = [s for s in found if s in scores] if scores is not None else found
    present = list(dict.fromkeys(r["target_tag"] for r in rows))
    present = [present[j] for j in tag_order(present)]
    chosen = [t for t in present if entity_type(t) is not None] if tags is None else [t for t in present if t in tags]
    return [(a, s, t) for a in ablates for s in scores for t in chosen + [OVERALL] * overall]


@dataclass(frozen=True)
class PairedSpec:
    """How comparisons are judged: ``delta`` the smallest difference of auc of interest, ``alpha`` the family-wise
    level (Holm over every testable comparison), ``k`` the judged k of the ceiling counts."""

    delta: float = DELTA
    alpha: float = ALPHA
    k: int = JUDGED


def paired_comparisons(per_run: Sequence[list[dict]], spec: PairedSpec = PairedSpec(),
                       methods: Sequence[str] | None = None, scores: Sequence[str] | None = ("accuracy",),
                       tags: Sequence[str] | None = None, overall: bool = True) -> list[dict]:
    """Every pair of methods compared on the auc across runs, per ablation value, score and tag, and OVERALL (per
    run the mean over the entity tags judged for both methods in every run of the pair of A − B; O aside, as in
    ``judging.method_verdicts``: its recall does not fall under ablation).

    Args:
        per_run: one ``judging.judge_methods`` list (or ``read_summary_csv`` rows) per run (seed).
        spec: delta (the smallest difference of auc of interest), alpha (the family-wise level; Holm runs over
            every testable comparison returned, m of them) and k (the judged k of the ceiling counts).
        methods: the methods compared, in this order (default: every method of the rows, in row order); A is the
            earlier of a pair.
        scores: the scores judged (None: every score of the rows).
        tags: the tags compared one by one (None: every entity tag, O aside); ``overall``: add OVERALL.

    Returns:
        one dict per (ablate, score, tag, pair), fields ``PAIRED_FIELDS``:

        - ``ablate``, ``score``, ``target_tag`` (a tag or "overall"), ``method_a``, ``method_b``;
        - ``n_runs``: runs with both methods (the paired observations), ``n_tags``: tags averaged per run;
        - ``mean_a``, ``mean_b``: the methods' mean auc over those runs and tags;
        - ``diff``: the mean over runs of A − B; ``sd_diff`` its sample sd over runs; ``se`` = sd_diff / √n_runs;
          ``df`` = n_runs − 1;
        - ``alpha``: the Holm level the comparison is judged at; ``lo``, ``hi``: the two-sided (1 − alpha) t
          interval of the difference at that level;
        - ``p_zero``: the paired t-test's two-sided p of no difference, uncorrected (``scipy.stats.ttest_rel``);
          ``p``: the decision p (``meta.decide``: 2 · the smallest one-sided p of the regions > +delta,
          < −delta, inside ±delta); ``p_holm``: its Holm-adjusted p over the m testable comparisons;
        - ``delta``; ``verdict``: "A better", "B better", "negligible", "inconclusive" or "cannot be tested";
          ``better``: the better method's name (None unless A or B is better);
        - ``k``: the judged k; ``n_cases``: tag × run cases behind the counts; ``ties``: cases with equal aucs;
          ``ceiling_a``, ``ceiling_b``, ``ceiling_both``: cases where A, B, both drive the tag's score to 0 at k
          (a case without a row at k counts as not at the ceiling);
        - ``test``: the test in words; ``reason``: why it cannot be tested (else None).
    """
    delta, alpha, k = spec.delta, spec.alpha, spec.k
    index = _index(per_run, k)
    found = list(dict.fromkeys(r["method"] for run in per_run for r in run))
    methods = found if methods is None else [m for m in methods if m in found]
    pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    cases = [_case(index, len(per_run), a, b, cell, k)
             for cell in _cells(per_run, scores, tags, overall) for a, b in pairs]
    ests = [est for _, est in cases]
    n = len(ests)
    decisions, adjusted = holm_decide(ests, [0.0] * n, [1] * n, [delta] * n, alpha)
    m = sum(e.testable for e in ests)
    return [_finish(row, est, dec, float(p), m, delta)
            for (row, est), dec, p in zip(cases, decisions, adjusted)]


def paired_csv(rows: list[dict]) -> str:
    """CSV text of ``paired_comparisons`` rows (fields ``PAIRED_FIELDS``; empty cells for None)."""
    return dicts_csv(rows, PAIRED_FIELDS)


def _means(sel: list[dict]) -> dict[str, float]:
    """Each method's mean auc, from the first comparison naming it, in order of appearance."""
    out: dict[str, float] = {}
    for r in sel:
        for side in ("a", "b"):
            if r[f"mean_{side}"] is not None:
                out.setdefault(r[f"method_{side}"], r[f"mean_{side}"])
    return out


def _against(sel: list[dict], best: str, other: str) -> dict | None:
    """The comparison of ``best`` and ``other``, oriented as best − other."""
    for r in sel:
        if {r["method_a"], r["method_b"]} == {best, other}:
            if r["method_a"] == best:
                return r
            flip = {A_BETTER: B_BETTER, B_BETTER: A_BETTER}
            return {**r, "method_a": best, "method_b": other, "mean_a": r["mean_b"], "mean_b": r["mean_a"],
                    "diff": _neg(r["diff"]), "lo": _neg(r["hi"]), "hi": _neg(r["lo"]),
                    "ceiling_a": r["ceiling_b"], "ceiling_b": r["ceiling_a"],
                    "verdict": flip.get(r["verdict"], r["verdict"])}
    return None


def _neg(x: float | None) -> float | None:
    return None if x is None else -x


def _random(per_run: Sequence[list[dict]], ablate: str, score: str, tag: str, k: int) -> dict:
    """Where the random draws sit at the judged k: the mean over runs and tags (``tag``, or the entity tags) of
    the random mean drop and of each method's own drop (the summary rows hold no auc of the random draws)."""
    rnd: dict[tuple, float] = {}
    own: dict[str, list[float]] = {}
    for i, run in enumerate(per_run):
        for r in run:
            if r["ablate"] != ablate or r["score"] != score or int(r["k"]) != k or not (
                    r["target_tag"] == tag if tag != OVERALL else entity_type(r["target_tag"]) is not None):
                continue
            own.setdefault(r["method"], []).append(r["own_drop"])
            if r["random_mean_drop"] is not None:  # the same for every method of a (run, tag)
                rnd[(i, r["target_tag"])] = r["random_mean_drop"]
    drop = float(np.mean(list(rnd.values()))) if rnd else None
    means = {m: float(np.mean(v)) for m, v in own.items()}
    above = [m for m, v in means.items() if drop is not None and v > drop]
    return {"k": int(k), "random_drop": drop, "own_drop": means, "above_random": above,
            "random_rank": len(above) + 1 if drop is not None else None}


def best_methods(rows: list[dict], tag: str = OVERALL, score: str = "accuracy",
                 per_run: Sequence[list[dict]] | None = None) -> dict:
    """Per ablation value, the best method by mean auc and those the comparisons cannot separate from it.

    Args:
        rows: ``paired_comparisons`` rows (their Holm levels and verdicts are used as they are).
        tag: the tag (or OVERALL) whose comparisons are read.
        per_run: the runs' ``judge_methods`` lists, for where the random draws sit (None: not given).

    Returns:
        {ablate: {"best": the method with the largest mean auc (the first in order on a tie), "means": {method:
        mean auc, largest first}, "worse": methods the best beats by more than delta at their Holm level,
        "not_separable": every other method (not significantly worse by delta after correction: negligible,
        inconclusive or cannot be tested), "equivalent": those of them within ±delta of the best (negligible),
        "comparisons": {method: the best − method comparison row}, "random": (with ``per_run``) {"k", "random_drop":
        the random draws' mean drop at the judged k, "own_drop": {method: its mean own drop at k}, "above_random":
        the methods whose mean own drop exceeds it, "random_rank": the rank of random among them, 1 = largest}}}.
    """
    out = {}
    for ablate in dict.fromkeys(r["ablate"] for r in rows):
        sel = [r for r in rows if r["ablate"] == ablate and r["score"] == score and r["target_tag"] == tag]
        means = dict(sorted(_means(sel).items(), key=lambda kv: -kv[1]))
        if not means:
            continue
        best = next(iter(means))
        versus = {m: _against(sel, best, m) for m in means if m != best}
        worse = [m for m, r in versus.items() if r is not None and r["verdict"] == A_BETTER]
        entry = {"best": best, "means": means, "worse": worse,
                 "not_separable": [m for m in versus if m not in worse],
                 "equivalent": [m for m, r in versus.items() if r is not None and r["verdict"] == NEGLIGIBLE],
                 "comparisons": versus}
        if per_run is not None:
            entry["random"] = _random(per_run, ablate, score, tag, sel[0]["k"])
        out[ablate] = entry
    return out
