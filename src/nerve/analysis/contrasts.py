"""Architecture contrasts: does a grid factor (char representation, word encoder, inference layer, the cells'
training recipe) change a finding's effect by at least its smallest effect of interest δ?

The unit is the grid cell. Per clause of a finding, each run's **clause effect** is the mean of its cases'
statistics in that run (the per-run summary ``verdicts._clause_effect`` combines; over the cases found in every
cell, so that every cell averages the same cases); a cell's value is the mean of its runs' clause effects. The
cell means are regressed on the varying factors (main effects, treatment-coded dummies) by ordinary least squares
(statsmodels ``OLS``), and each pair of a factor's levels is one contrast: the difference of the two levels'
coefficients (in a complete grid: the difference of the two levels' means over the cells), a t test with the
residual degrees of freedom (cells − parameters).

Why this model. A run's effect is y = μ + Σ factor effects + u_cell + e_run, u_cell the cell's own deviation
(interactions and whatever else differs between architectures; sd σ_c), e_run the seed-to-seed variation with
its within-run measurement noise (sd σ_s). For a question about *architectures*, the replicate is the cell, not
the run: the runs of one cell share u_cell, so testing with runs as independent (an OLS on runs, residual df =
runs − parameters) is pseudo-replication and too liberal whenever σ_c > 0. In a balanced grid the cell mean has
variance σ_c² + σ_s²/n for every cell, and OLS on the cell means with the residual df is the exact test of the
nested (runs-within-cells) mixed model's fixed effects (the means model; Murtaugh 2007); a fit of that mixed model
(statsmodels ``MixedLM``) gives the same estimates but tests them with a normal reference, which with 12 cells is
too liberal. The real grid (3 char × 2 encoder × 2 decoder = 12 cells, plus the recipe) leaves 6–7 residual df,
enough for a t test at any seed count ≥ 1; more seeds shrink σ_s²/n, not the df. Unequal seed counts (failed
runs) make the cell means' variances unequal; the test then is approximate. The within-run variances are not used:
each run's value already carries its measurement noise, which enters σ_s.

Confounding. A factor whose level pattern over the cells lies in the span of other factors' (e.g. a recipe given
only to the word-CNN cells) cannot be separated from them: it is merged with the smallest set of those factors into
one joint factor (its levels: the combinations that occur) and tested jointly, named "confounded with …", never
dropped silently.

Verdict (``meta.decide`` with threshold 0 and δ = the clause's sesoi, Holm over every contrast of the study via
``meta.holm_decide``): the claim is "the factor changes the effect by at least δ" in either direction — **holds**
when the contrast's interval at its Holm level lies outside ±δ (above +δ or below −δ: the sign of the effect says
which way), **negligible** when it lies inside ±δ (equivalence), else **inconclusive**; **cannot be tested** with
no residual df or no residual variation. Population: architectures of this grid, trained with other seeds.

Reference: Murtaugh, P. A. (2007). Simplicity and complexity in ecological data analysis. *Ecology* 88, 56–62.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nerve.analysis.meta import CONTRADICTED, HOLDS, NOT_TESTABLE, Estimate, holm_decide

POPULATION = "architectures of this grid, trained with other seeds"
RECIPE = "recipe"
NO_RECIPE = "none"


@dataclass(frozen=True)
class Factor:
    """A factor of the grid as tested: its name ("decoder"; "encoder & recipe" when confounded factors are tested
    jointly), the grid factors it stands for, its levels in grid order, and a note ("confounded with recipe")."""

    name: str
    parts: tuple[str, ...]
    levels: tuple[str, ...]
    note: str = ""

    def level(self, cell: Mapping[str, str]) -> str:
        """This factor's level in a cell ({factor: level})."""
        return " / ".join(cell[p] for p in self.parts)


@dataclass(frozen=True)
class Contrast:
    """One tested contrast: which finding, clause and statistic; which factor and levels (effect = high − low);
    the OLS estimate (effect, se, df), the interval at its Holm level, p (the decision p, 2 · the smallest one-sided
    p of holds / contradicted / negligible) and its Holm-adjusted p over the m contrasts of the study, δ, the
    verdict, the test and population in words, the cells and runs behind it, and why it cannot be tested (or
    None)."""

    label: str
    number: int
    id: str
    ablate: str | None
    clause: int
    statistic: str
    factor: str
    low: str
    high: str
    note: str
    effect: float
    se: float
    df: float
    ci: tuple[float, float]
    level: float
    p: float
    p_holm: float | None
    m: int
    sesoi: float
    verdict: str
    test: str
    population: str
    n_cells: int
    n_runs: int
    reason: str | None = None


def recipe_level(recipe: Sequence[str]) -> str:
    """A cell's recipe as a factor level: its --cell-set items, sorted and de-duplicated, "; "-joined; "none"."""
    items = sorted(set(recipe))
    return "; ".join(items) if items else NO_RECIPE


def levels_of(cells: Sequence[Mapping[str, str]], factor: str) -> tuple[str, ...]:
    """The levels of a grid factor in the order the cells first show them."""
    return tuple(dict.fromkeys(c[factor] for c in cells))


def varying(cells: Sequence[Mapping[str, str]]) -> list[str]:
    """The factors set in every cell that take at least two levels, in the cells' key order (recipe last)."""
    keys = [k for k in cells[0] if all(k in c for c in cells)] if cells else []
    keys = [k for k in keys if k != RECIPE] + [k for k in keys if k == RECIPE]
    return [k for k in keys if len(levels_of(cells, k)) > 1]


def design(cells: Sequence[Mapping[str, str]], factors: Sequence[Factor]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """The main-effects design matrix: an intercept and one treatment-coded dummy per non-reference level (the
    reference: a factor's first level), with the (factor, level) of each dummy column."""
    columns = [(f.name, lv) for f in factors for lv in f.levels[1:]]
    X = np.ones((len(cells), 1 + len(columns)))  # shape: (cells, 1 + dummies)
    for j, (name, lv) in enumerate(columns):
        f = next(g for g in factors if g.name == name)
        X[:, 1 + j] = [f.level(c) == lv for c in cells]
    return X, columns


def _rank(cells: Sequence[Mapping[str, str]], factors: Sequence[Factor]) -> int:
    return int(np.linalg.matrix_rank(design(cells, factors)[0]))


def _separable(cells: Sequence[Mapping[str, str]], f: Factor, others: Sequence[Factor]) -> bool:
    """Whether each of f's contrasts adds a dimension beyond the intercept and ``others``."""
    return _rank(cells, [*others, f]) - _rank(cells, others) == len(f.levels) - 1


def _merge(cells: Sequence[Mapping[str, str]], f: Factor, partners: Sequence[Factor]) -> Factor:
    parts = tuple(p for g in (f, *partners) for p in g.parts)
    joint = Factor(" & ".join(g.name for g in (f, *partners)), parts, ())
    note = f"{f.name} confounded with {', '.join(g.name for g in partners)}: tested jointly"
    notes = "; ".join(n for n in (f.note, *(g.note for g in partners), note) if n)
    return Factor(joint.name, parts, tuple(dict.fromkeys(joint.level(c) for c in cells)), notes)


def joint_factors(cells: Sequence[Mapping[str, str]], names: Sequence[str]) -> list[Factor]:
    """The factors to test: each varying grid factor, except that one which cannot be separated from others (its
    dummies add fewer dimensions than its levels − 1 beyond the rest) is merged with the smallest set of them it is
    confounded with, until every factor is separable. The merged factor sits where its first part was."""
    factors = [Factor(n, (n,), levels_of(cells, n)) for n in names]
    while True:
        bad = next((f for f in factors if not _separable(cells, f, [g for g in factors if g is not f])), None)
        if bad is None:
            return factors
        others = [g for g in factors if g is not bad]
        partners = next(list(s) for size in range(1, len(others) + 1) for s in itertools.combinations(others, size)
                        if not _separable(cells, bad, list(s)))
        merged = _merge(cells, bad, partners)
        at = min(factors.index(g) for g in (bad, *partners))
        rest = [g for g in factors if g is not bad and g not in partners]
        factors = rest[:at] + [merged] + rest[at:]


def fit_contrasts(y: Sequence[float], cells: Sequence[Mapping[str, str]],
                  factors: Sequence[Factor]) -> list[tuple[Factor, str, str, Estimate]]:
    """OLS of the cell means ``y`` (one per cell) on the factors' main effects; for every pair of levels (low,
    high) of every factor, the estimate of high − low (the difference of their coefficients) with its standard
    error and the residual df. Not testable with no residual df or no residual variation."""
    import statsmodels.api as sm

    y = np.asarray(y, dtype=np.float64)  # shape: (cells,)
    X, columns = design(cells, factors)
    df = len(cells) - int(np.linalg.matrix_rank(X))
    method = f"OLS on cell means, t({df})"
    pairs = [(f, lo, hi) for f in factors for lo, hi in itertools.combinations(f.levels, 2)]
    k = len(cells)
    if df < 1:
        reason = f"no residual df ({k} cells, {X.shape[1]} parameters)"
        return [(f, lo, hi, Estimate(math.nan, math.nan, 0.0, k, math.nan, method, POPULATION, reason))
                for f, lo, hi in pairs]
    res = sm.OLS(y, X).fit()
    out = []
    for f, lo, hi in pairs:
        c = np.zeros(X.shape[1])  # shape: (parameters,)
        for lv, sign in ((hi, 1.0), (lo, -1.0)):
            if (f.name, lv) in columns:
                c[1 + columns.index((f.name, lv))] += sign
        t = res.t_test(c)
        effect, se = float(np.ravel(t.effect)[0]), float(np.ravel(t.sd)[0])
        reason = None if se > 1e-12 * max(1.0, abs(effect)) else "no residual variation between cells"
        out.append((f, lo, hi, Estimate(effect, se, float(res.df_resid), k, math.nan, method, POPULATION, reason)))
    return out


def run_effects(clause: Mapping, keys: Sequence[str]) -> dict[str, float]:
    """Per run, the clause effect: the mean of its cases' statistics in that run, over the cases ``keys``."""
    per_run: dict[str, list[float]] = {}
    for case in clause["cases"]:
        if case.get("key") in keys:  # a findings.json before per-run values (no runs / values) gives none
            for run, v in zip(case.get("runs", []), case.get("values", [])):
                if v is not None and math.isfinite(v):
                    per_run.setdefault(run, []).append(float(v))
    return {run: float(np.mean(vs)) for run, vs in per_run.items()}


def _clause_table(findings: Mapping[str, Mapping], ci: int) -> tuple[dict[str, list[float]], list[str]]:
    """Per cell the runs' clause effects over the cases common to every cell, and the cells without any."""
    clauses = {name: f["clauses"][ci] for name, f in findings.items() if ci < len(f.get("clauses", []))}
    common = set.intersection(*({c.get("key") for c in cl["cases"]} for cl in clauses.values())) if clauses else set()
    values = {name: list(run_effects(cl, sorted(common)).values()) for name, cl in clauses.items()}
    return values, [n for n in findings if not values.get(n)]


def _sesoi(findings: Mapping[str, Mapping], ci: int) -> float:
    return next((float(c["sesoi"]) for f in findings.values() for c in f["clauses"][ci]["cases"]
                 if c.get("sesoi") is not None), 0.0)


def study_contrasts(cells: Mapping[str, Mapping[str, str]], findings: Mapping[str, Sequence[Mapping]],
                    alpha: float = 0.05) -> list[Contrast]:
    """Every architecture contrast of a grid study, judged under Holm over all of them.

    Args:
        cells: per cell (variant name) its factor levels, e.g. {"char": "cnn", "encoder": "lstm", "decoder":
            "crf", "recipe": "none"} (``recipe_level`` of its --cell-set items).
        findings: per cell its ``evaluate_findings`` results (findings.json); a finding (and ablation value) is
            tested when every cell has it.
        alpha: family-wise level.

    Returns:
        One ``Contrast`` per finding, clause and pair of levels of each tested factor (``joint_factors``), in the
        findings' order; a clause some cell lacks gives rows that cannot be tested, with the cells named.
    """
    from nerve.analysis.verdicts import finding_label

    names = list(cells)
    table = [cells[n] for n in names]
    if len(names) < 2:
        return []
    factors = joint_factors(table, varying(table))
    rows: list[dict] = []
    keyed = {n: {(f["number"], f.get("ablate")): f for f in findings.get(n, [])} for n in names}
    for key, first in keyed[names[0]].items():
        have = {n: keyed[n][key] for n in names if key in keyed[n]}
        for ci, clause in enumerate(first.get("clauses", [])):
            values, missing = _clause_table(have, ci) if len(have) == len(names) else ({}, [n for n in names
                                                                                            if n not in have])
            base = {"label": finding_label(first), "number": first["number"], "id": first["id"],
                    "ablate": first.get("ablate"), "clause": ci + 1, "statistic": clause.get("statistic", ""),
                    "sesoi": _sesoi(have, ci) if not missing else _sesoi({names[0]: first}, ci),
                    "n_cells": len(names) - len(missing), "n_runs": sum(len(v) for v in values.values())}
            if missing:
                why = f"not evaluated in every cell (none in {', '.join(missing)})"
                fits = [(f, lo, hi, Estimate(math.nan, math.nan, math.nan, 0, math.nan, "", POPULATION, why))
                        for f in factors for lo, hi in itertools.combinations(f.levels, 2)]
            else:
                fits = fit_contrasts([float(np.mean(values[n])) for n in names], table, factors)
            rows += [base | {"factor": f, "low": lo, "high": hi, "est": est} for f, lo, hi, est in fits]
    return judge(rows, alpha)


def judge(rows: Sequence[dict], alpha: float) -> list[Contrast]:
    """Holm over every testable contrast (``meta.holm_decide``, threshold 0, δ = sesoi); "contradicted" (beyond −δ)
    is a change by at least δ too, so it reads "holds" with a negative effect."""
    ests = [r["est"] for r in rows]
    decisions, adjusted = holm_decide(ests, [0.0] * len(rows), [1] * len(rows), [r["sesoi"] for r in rows], alpha)
    m = sum(e.testable for e in ests)
    out = []
    for r, e, d, a in zip(rows, ests, decisions, adjusted):
        f = r["factor"]
        out.append(Contrast(
            label=r["label"], number=r["number"], id=r["id"], ablate=r["ablate"], clause=r["clause"],
            statistic=r["statistic"], factor=f.name, low=r["low"], high=r["high"], note=f.note, effect=e.effect,
            se=e.se, df=e.df, ci=tuple(d.interval), level=1 - d.alpha, p=d.p,
            p_holm=float(a) if math.isfinite(a) else None, m=m, sesoi=r["sesoi"],
            verdict=HOLDS if d.verdict == CONTRADICTED else d.verdict, test=e.method, population=e.population,
            n_cells=r["n_cells"], n_runs=r["n_runs"], reason=e.reason))
    return out


CSV_FIELDS = ("finding", "id", "ablate", "clause", "statistic", "factor", "low", "high", "confounded", "effect",
              "se", "df", "ci_low", "ci_high", "level", "test", "p", "p_holm", "m", "sesoi", "verdict", "n_cells",
              "n_runs", "population", "reason")


def csv_rows(contrasts: Sequence[Contrast]) -> list[dict]:
    """contrasts.csv's rows (``CSV_FIELDS``); NaN as None."""
    def num(x):
        return float(x) if x is not None and math.isfinite(x) else None

    return [{"finding": c.number, "id": c.id, "ablate": c.ablate, "clause": c.clause, "statistic": c.statistic,
             "factor": c.factor, "low": c.low, "high": c.high, "confounded": c.note or None, "effect": num(c.effect),
             "se": num(c.se), "df": num(c.df), "ci_low": num(c.ci[0]), "ci_high": num(c.ci[1]),
             "level": num(c.level) if c.reason is None else None, "test": c.test, "p": num(c.p),
             "p_holm": c.p_holm, "m": c.m, "sesoi": c.sesoi, "verdict": c.verdict, "n_cells": c.n_cells,
             "n_runs": c.n_runs, "population": c.population, "reason": c.reason} for c in contrasts]


__all__ = ["NOT_TESTABLE", "POPULATION", "Contrast", "Factor", "csv_rows", "design", "fit_contrasts", "judge",
           "joint_factors", "levels_of", "recipe_level", "run_effects", "study_contrasts", "varying"]
