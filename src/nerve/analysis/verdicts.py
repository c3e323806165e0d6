"""The findings across runs: per case the per-run statistics with their within-run variances, combined by a
random-effects meta-analysis (``meta``), judged against the clause's smallest effect of interest under Holm over
every case of the study; per clause and finding the counts of each verdict class and the verdict its quantifier
gives; the evidence in plain words (``verdict_words``)."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from nerve.analysis.findings import NA, RunEvidence, evaluate_rule, load_rules
from nerve.analysis.meta import (
    CONTRADICTED,
    HOLDS,
    INCONCLUSIVE,
    MOST,
    NEGLIGIBLE,
    NOT_TESTABLE,
    Estimate,
    fixed_effect,
    holm_decide,
    random_effects,
)
from nerve.analysis.verdict_words import (  # noqa: F401  (the report and the CLI import them from here)
    case_words,
    evidence,
    finding_label,
    findings_table,
    p_text,
    run_words,
    signed,
)
from nerve.io import atomic_write_text

FAILS = CONTRADICTED  # the class a claim beyond its smallest effect the other way gets (was "fails")
NULL_LEVEL = 0.05  # a run's statistic is "beyond its null" when its one-sided within-run p is below this
METHOD = ("per case, the statistic in each run with its within-run variance (bootstrap over units, {resamples:,} "
          "resamples, for correlations and cosines; {drops} for accuracy drops); across runs "
          "a random-effects meta-analysis (Paule–Mandel tau², Hartung–Knapp–Sidik–Jonkman t with k − 1 df, its "
          "variance never below the within-run one); Holm over all {m} tested cases of this study, each case's "
          "interval at its Holm level (1 − α/(m − j + 1) for the j-th decided, the stopping level for the rest); a "
          "case holds when its interval lies beyond the threshold + δ on the claim's side, is contradicted beyond δ "
          "the other way, negligible inside ±δ (two one-sided tests), else inconclusive; α = {alpha}. Population: "
          "models of this architecture trained with other seeds (with 1 run: the fixed-effect, within-run evidence "
          "for this trained model). The within-run permutation null ({permutations:,} permutations) and the random "
          "draws are shown as description.")
DROP_VARIANCE = {  # the accuracy drops' within-run variance in METHOD, by the variance_method of the study's runs
    "sentence bootstrap": "bootstrap over the scoring split's sentences, {resamples:,} resamples",
    "binomial": "binomial over the tag's tokens",
    "both": ("bootstrap over the scoring split's sentences, {resamples:,} resamples (binomial over the tag's tokens "
             "in {n_other} of {n_drops} run cases, from analyses that saved no per-sentence counts)"),
}


def drop_variance_words(methods: list, stats: dict) -> str:
    """How the study's accuracy drops got their within-run variance, in words (``DROP_VARIANCE``): ``methods``
    is the variance_method of every run's ablation case (None where it had no variance)."""
    used = [m for m in methods if m]
    n_boot = sum(m == "sentence bootstrap" for m in used)
    key = "sentence bootstrap" if n_boot == len(used) else ("binomial" if not n_boot else "both")
    return DROP_VARIANCE[key].format(n_other=len(used) - n_boot, n_drops=len(used), **stats)


def statistic_name(clause: dict) -> str:
    """What a clause's per-case statistic is, in words."""
    kind = clause["kind"]
    if kind == "compare":
        name = "r" if clause.get("matrix") == "corr" else "cosine"
        return f"{name} − baseline" if clause.get("baseline") else name
    if kind == "is_most":
        return "margin (cosine to the named tag − the best other)"
    if kind == "some_exceeds":
        return "margin (best candidate's cosine − the named tag's)"
    if kind == "ablation_vs_random":
        return "drop − random drop"
    return "own drop − others' mean drop"


def _short(clause: dict) -> str:
    return {"is_most": "margin", "some_exceeds": "margin", "ablation_vs_random": "excess drop",
            "ablation_selectivity": "selectivity"}.get(clause["kind"], statistic_name(clause))


def _combine(values: list, variances: list) -> tuple[Estimate, Estimate, bool]:
    """(the case's verdict estimate, the fixed-effect one, whether every run had a within-run variance).

    Runs without a within-run variance count as 0 for all runs of the case: the random-effects mean then is
    the one-sample t-test over runs (the HKSJ limit), and the fixed effect cannot be tested."""
    known = all(v is not None and math.isfinite(v) for v in variances)
    v = [float(x) for x in variances] if known else [0.0] * len(values)
    fe = fixed_effect(values, v)
    return (random_effects(values, v) if len(values) >= 2 else fe), fe, known


def _case_summary(key: str, per_run: list[dict], clause: dict) -> dict:
    """One case across runs (uncorrected): per-run statistics and variances, the estimates, the descriptive
    within-run nulls."""
    c0 = per_run[0]
    values = [c["statistic"] for c in per_run]
    variances = [c.get("variance") for c in per_run]
    est, fe, known = _combine(values, variances)
    out = {"key": key, "tags": c0["tags"], "statistic": statistic_name(clause), "op": c0["op"],
           "threshold": c0["threshold"], "sesoi": c0["sesoi"], "runs": [c["run"] for c in per_run],
           "values": values, "variances": variances, "within_variance": known, "n": len(values),
           "variance_methods": [c.get("variance_method") for c in per_run],
           "_est": est, "_fe": fe}
    if clause.get("baseline"):
        out["baselines"] = [c.get("baseline") for c in per_run]
    out["runs_holding"] = sum(bool(c["holds"]) for c in per_run)
    nulls = [c["null_p"] for c in per_run if c.get("null_p") is not None and math.isfinite(c["null_p"])]
    out["runs_with_null"] = len(nulls)
    out["runs_beyond_null"] = sum(p < NULL_LEVEL for p in nulls)
    out["null_p_median"] = float(np.median(nulls)) if nulls else None
    floors = [c["null_floor"] for c in per_run if c.get("null_floor")]
    out["null_floor"] = max(floors) if floors else None
    zs = [c["null_z"] for c in per_run if c.get("null_z") is not None]
    out["null_z_mean"] = float(np.mean(zs)) if zs else None
    return out


def _clause_effect(per_run: list[dict], ci: int, alpha: float) -> dict:
    """The clause's summary effect: per run the mean statistic over its cases (variance: the mean standard error
    squared, as if the cases were perfectly correlated), combined like a case; its interval at 1 − α,
    uncorrected (a summary, not a test)."""
    means, variances = [], []
    for r in per_run:
        cases = r["clauses"][ci]["cases"]
        means.append(float(np.mean([e["statistic"] for e in cases])))
        v = [e.get("variance") for e in cases]
        variances.append(float(np.mean(np.sqrt(v))) ** 2 if all(x is not None for x in v) else None)
    est = _combine(means, variances)[0]
    return {"mean": est.effect if means else None, "ci": list(est.interval(alpha)), "n": len(means),
            "level": 1 - alpha, "population": est.population}


def _across(rule: dict, per_run: list[dict], stats: dict) -> dict:
    """The finding's per-clause cases across runs (uncorrected; ``_decide`` adds the corrected verdicts)."""
    clauses = []
    for ci, clause in enumerate(rule["clause"]):
        by_key: dict[str, list[dict]] = {}
        applicable = []
        for r in per_run:
            c = r["clauses"][ci]
            if c["status"] == NA:
                continue
            applicable.append(r)
            for e in c["cases"]:
                by_key.setdefault(e["key"], []).append(e | {"run": r["run"], "op": c["op"],
                                                            "threshold": c["threshold"], "sesoi": c["sesoi"]})
        cases = [_case_summary(k, v, clause) for k, v in by_key.items()]
        clauses.append({"kind": clause["kind"], "quantifier": clause.get("quantifier", "all"),
                        "statistic": statistic_name(clause), "short": _short(clause),
                        "noun": "tags" if "b" not in clause else "pairs",
                        "effect": _clause_effect(applicable, ci, float(stats["alpha"])), "cases": cases,
                        "k": next((r["clauses"][ci].get("k") for r in per_run if "k" in r["clauses"][ci]), None)})
    return {"clauses": clauses}


def evaluate_findings(runs: list, rules_path: str | os.PathLike | None = None,
                      statistics: dict | None = None) -> list[dict]:
    """Every finding of the rules file on every run, tested across runs.

    Args:
        runs: ``RunEvidence`` or analysed runs (``load_run_analysis``), unnamed ones named run0, run1, ...
        rules_path: rules file; default the packaged ``rules.toml`` (its [statistics] table sets alpha, the
            numbers of permutations and of bootstrap resamples of the units, and the seed).
        statistics: settings that replace the rules file's (same keys).

    Returns:
        One JSON-ready dict per finding and ablation value: number, id, description, ablate, rank_split,
        score_split, n_runs, applicable_runs, holds_runs (runs where its statistics all lay on the rule's side),
        verdict (holds, contradicted, negligible, inconclusive, cannot be tested, not applicable), p (the
        Holm-adjusted p that decides it), counts (cases per verdict class), n_cases, n_holding, share, clauses
        (per clause: statistic, effect {mean, ci, n, level, population}, verdict, p, counts, cases with values
        and variances per run, mean (the combined effect), ci (its interval at the case's Holm level), level,
        se, df, tau2, test, population, correction, p, p_holm, verdict, within (the fixed-effect verdict for
        these trained models), runs_holding, runs_beyond_null), evidence (one line in words), method (the tests
        in words), runs (``evaluate_rule`` per run).
    """
    rules, stats = load_rules(rules_path)
    unknown = [k for k in statistics or {} if k not in stats]
    if unknown:
        raise ValueError(f"statistics: expected keys {', '.join(stats)}, got {', '.join(unknown)}")
    stats |= statistics or {}
    runs = [r if isinstance(r, RunEvidence) else RunEvidence.of(r) for r in runs]
    runs = [r if r.name else dataclasses.replace(r, name=f"run{i}") for i, r in enumerate(runs)]
    out = []
    for rule in rules:
        for ablate in rule.get("ablate", [None]):
            per_run = [evaluate_rule(rule, r, ablate or "zero", stats) for r in runs]
            applicable = [r for r in per_run if r["status"] != NA]
            split = next(((r.rank_split, r.score_split) for r in runs if ablate in r.sweeps), ("", ""))
            out.append({"number": rule["number"], "id": rule["id"], "description": rule["description"],
                        "ablate": ablate, "rank_split": split[0] if ablate else None,
                        "score_split": split[1] if ablate else None, "n_runs": len(per_run),
                        "applicable_runs": len(applicable), "holds_runs": sum(bool(r["holds"]) for r in applicable),
                        **_across(rule, applicable, stats), "runs": per_run})
    _decide(out, stats)
    return out


def _judge(cases: list[dict], key: str, alpha: float) -> int:
    """Holm over the cases' estimates ``key``; writes each case's decision; returns m (the tested cases)."""
    ests = [c[key] for c in cases]
    signs = [1 if c["op"] == ">" else -1 for c in cases]
    decisions, adjusted = holm_decide(ests, [c["threshold"] for c in cases], signs, [c["sesoi"] for c in cases],
                                      alpha)
    m = sum(e.testable for e in ests)
    for c, e, d, a in zip(cases, ests, decisions, adjusted):
        c[key + "_decision"] = {"effect": e.effect if math.isfinite(e.effect) else None, "se": e.se, "df": e.df,
                                "k": e.k, "tau2": e.tau2, "test": e.method, "population": e.population,
                                "reason": e.reason, "verdict": d.verdict, "ci": list(d.interval),
                                "level": 1 - d.alpha, "p": d.p, "p_holm": None if not math.isfinite(a) else float(a),
                                "p_holds": d.p_holds, "p_contradicted": d.p_contradicted,
                                "p_negligible": d.p_negligible, "t": d.t,
                                "correction": (f"Holm over {m} cases; interval at {1 - d.alpha:.3%}"
                                               if e.testable else None)}
    return m


def _decide(findings: list[dict], stats: dict) -> None:
    """Holm over every tested case of every finding (once for the verdicts, once for the within-run evidence
    alone), then case, clause and finding verdicts and evidence."""
    cases = [c for f in findings for cl in f["clauses"] for c in cl["cases"]]
    alpha = float(stats["alpha"])
    m = _judge(cases, "_est", alpha)
    _judge(cases, "_fe", alpha)
    for c in cases:
        d, w = c.pop("_est_decision"), c.pop("_fe_decision")
        del c["_est"], c["_fe"]
        c.update({k: d[k] for k in ("verdict", "p", "p_holm", "ci", "level", "se", "df", "tau2", "test",
                                    "population", "correction", "reason", "p_holds", "p_contradicted",
                                    "p_negligible", "t")})
        c["mean"] = d["effect"]
        c["within"] = {k: w[k] for k in ("effect", "ci", "level", "verdict", "p_holm", "test", "population",
                                         "reason")}
    drops = [v for c in cases for v in c["variance_methods"] if v]  # only the ablation cases name one
    method = METHOD.format(m=m, drops=drop_variance_words(drops, stats), **stats)
    for f in findings:
        for cl in f["clauses"]:
            cl["counts"] = _counts(cl["cases"])
            cl["verdict"], cl["p"] = quantified(cl["quantifier"], cl["cases"]) if cl["cases"] else (NA, None)
            within = [c["within"] for c in cl["cases"]]
            cl["within_counts"] = _counts(within)
            cl["within_verdict"] = quantified(cl["quantifier"], within)[0] if within else NA
        f["verdict"], f["p"] = _finding_verdict(f, [(cl["verdict"], cl["p"]) for cl in f["clauses"]])
        f["within_verdict"] = _finding_verdict(f, [(cl["within_verdict"], None) for cl in f["clauses"]])[0]
        tested = [c for cl in f["clauses"] for c in cl["cases"]]
        f["counts"] = _counts(tested)
        f["n_cases"] = len(tested)
        f["n_holding"] = f["counts"][HOLDS]
        f["share"] = f["n_holding"] / len(tested) if tested else None
        f["alpha"], f["method"] = alpha, method
        f["evidence"] = evidence(f)


def _counts(cases: list[dict]) -> dict:
    return {v: sum(c["verdict"] == v for c in cases) for v in
            (HOLDS, CONTRADICTED, NEGLIGIBLE, INCONCLUSIVE, NOT_TESTABLE)}


def _finding_verdict(f: dict, clauses: list[tuple[str, float | None]]) -> tuple[str, float | None]:
    """A finding's verdict from its clauses' (every clause must hold; the first of contradicted, negligible, holds
    for most, inconclusive, cannot be tested that a clause has otherwise) and the p that decides it."""
    verdicts = [v for v, _ in clauses]
    if not f["applicable_runs"] or NA in verdicts:
        return NA, None
    verdict = next((v for v in (CONTRADICTED, NEGLIGIBLE, MOST, INCONCLUSIVE, NOT_TESTABLE) if v in verdicts), HOLDS)
    decided = [p for v, p in clauses if v == verdict and p is not None]
    return verdict, ((max(decided) if verdict in (HOLDS, MOST) else min(decided)) if decided else None)


def quantified(quantifier: str, cases: list[dict]) -> tuple[str, float | None]:
    """A clause's verdict from its cases' and the Holm-adjusted p that decides it.

    With ``need`` cases that must hold (all: every one, most: more than half, any: one): holds when at least
    ``need`` hold; contradicted when so many are contradicted (n − need + 1) that it could not hold whatever the
    rest; negligible when the negligible and contradicted cases together are that many (it cannot hold, and the
    effect is below δ where it fails); cannot be tested when every case is; else inconclusive.

    An "all" claim that cannot hold but holds in a majority of its cases "holds for most" (its p: the majority's
    deciding one): one negligible or contradicted case among many holding ones is neither a "holds" nor a red
    "fails", and the counts say which cases fail."""
    n = len(cases)
    need = {"all": n, "most": n // 2 + 1, "any": 1}[quantifier]

    def ps(*classes):
        return sorted(c["p_holm"] for c in cases if c["verdict"] in classes)

    if len(ps(HOLDS)) >= need:
        return HOLDS, ps(HOLDS)[need - 1]
    cannot_hold = len(ps(NEGLIGIBLE, CONTRADICTED)) >= n - need + 1
    if quantifier == "all" and cannot_hold and len(ps(HOLDS)) >= n // 2 + 1:
        return MOST, ps(HOLDS)[n // 2]
    if len(ps(CONTRADICTED)) >= n - need + 1:
        return CONTRADICTED, ps(CONTRADICTED)[n - need]
    if len(ps(NEGLIGIBLE, CONTRADICTED)) >= n - need + 1:
        return NEGLIGIBLE, ps(NEGLIGIBLE, CONTRADICTED)[n - need]
    if all(c["verdict"] == NOT_TESTABLE for c in cases):
        return NOT_TESTABLE, None
    return INCONCLUSIVE, None


_quantified = quantified


def jsonable(x):
    """``x`` with numpy scalars as Python numbers and non-finite floats as None (JSON's null)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    return x


def write_findings(path: str | os.PathLike, results: list[dict]) -> None:
    """Write ``evaluate_findings`` results to ``path`` (findings.json: a JSON list, NaN as null) atomically."""
    atomic_write_text(path, json.dumps(jsonable(results), indent=2, allow_nan=False) + "\n")
