"""The findings across runs: per case the mean statistic with a bootstrap interval over runs, a one-sample test
against the rule's threshold, Holm–Bonferroni over every case of the study, and verdicts in plain words."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from nerve.analysis.findings import NA, RunEvidence, evaluate_rule, load_rules, oriented
from nerve.analysis.stats import bootstrap_ci, case_rng, holm, one_sample_p
from nerve.io import atomic_write_text

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"
NULL_LEVEL = 0.05  # a run's statistic is "beyond its null" when its one-sided within-run p is below this
METHOD = ("per case, the statistic in each run; its mean over runs with a {level:.0%} percentile bootstrap "
          "interval over runs ({resamples:,} resamples); a two-sided one-sample t-test of the per-run statistic "
          "against the rule's threshold; Holm–Bonferroni over all {m} tested cases of this study; a case holds "
          "(fails) when its corrected p < {alpha} and its mean lies on the rule's (the other) side. Within each "
          "run: a permutation null ({permutations:,} permutations of the second tag's units) for the correlation "
          "and cosine findings, the random draws for the ablation findings.")


def statistic_name(clause: dict) -> str:
    """What a clause's per-case statistic is, in words."""
    kind = clause["kind"]
    if kind == "compare":
        return "r" if clause.get("matrix") == "corr" else "cosine"
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


def _case_noun(clause: dict) -> str:
    return "tags" if "b" not in clause else "pairs"


def signed(x, digits: int = 2) -> str:
    """Signed, two decimals (four below 0.01, so that a small effect is not shown as 0.00)."""
    if x is None or not math.isfinite(x):
        return "–"
    digits = digits if abs(x) >= 0.01 or x == 0 else digits + 2
    return f"{x:+.{digits}f}".replace("-", "−")


def p_text(p) -> str:
    """A p-value in two significant digits (scientific below 0.001), "–" for none."""
    if p is None or not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _mean_ci(x: list[float], rng, stats: dict) -> dict:
    x = [v for v in x if v is not None and math.isfinite(v)]
    lo, hi = bootstrap_ci(x, rng, int(stats["resamples"]), float(stats["level"]))
    return {"mean": float(np.mean(x)) if x else None, "ci": [lo, hi], "n": len(x)}


def _case_summary(key: str, per_run: list[dict], clause: dict, stats: dict, rng_key: str) -> dict:
    """One case across runs: per-run statistics, mean, interval, p (uncorrected), runs holding / beyond null."""
    op, threshold = per_run[0]["op"], per_run[0]["threshold"]
    values = [c["statistic"] for c in per_run]
    out = {"key": key, "tags": per_run[0]["tags"], "statistic": statistic_name(clause), "op": op,
           "threshold": threshold, "runs": [c["run"] for c in per_run], "values": values}
    out |= _mean_ci(values, case_rng(stats["seed"], rng_key, "bootstrap"), stats)
    out["p"] = one_sample_p(values, threshold)
    out["runs_holding"] = sum(bool(c["holds"]) for c in per_run)
    nulls = [c.get("null_p") for c in per_run if c.get("null_p") is not None and math.isfinite(c["null_p"])]
    out["runs_with_null"] = len(nulls)
    out["runs_beyond_null"] = sum(p < NULL_LEVEL for p in nulls)
    zs = [c["null_z"] for c in per_run if c.get("null_z") is not None]
    out["null_z_mean"] = float(np.mean(zs)) if zs else None
    return out


def _case_verdict(case: dict, alpha: float) -> str:
    p, mean = case.get("p_holm"), case.get("mean")
    if p is None or not math.isfinite(p) or mean is None or p >= alpha:
        return INCONCLUSIVE
    d = oriented(mean, case["op"], case["threshold"])
    return HOLDS if d > 0 else (FAILS if d < 0 else INCONCLUSIVE)


def _quantified(quantifier: str, cases: list[dict]) -> tuple[str, float | None]:
    """A clause's verdict from its cases' (all / most / any must hold) and the corrected p that decides it."""
    n = len(cases)
    need = {"all": n, "most": n // 2 + 1, "any": 1}[quantifier]  # cases that must hold
    holding = sorted(c["p_holm"] for c in cases if c["verdict"] == HOLDS)
    failing = sorted(c["p_holm"] for c in cases if c["verdict"] == FAILS)
    if len(holding) >= need:
        return HOLDS, holding[need - 1]
    if len(failing) >= n - need + 1:  # too many fail for the quantifier ever to hold
        return FAILS, failing[n - need]
    toward = sorted(c["p_holm"] if oriented(c["mean"], c["op"], c["threshold"]) > 0 else 1.0
                    for c in cases if c.get("p_holm") is not None and math.isfinite(c["p_holm"]))
    return INCONCLUSIVE, (toward[need - 1] if len(toward) >= need else None)


def _across(rule: dict, per_run: list[dict], stats: dict, ablate: str | None) -> dict:
    """The finding's per-clause cases across runs (uncorrected; ``_decide`` adds the corrected verdicts)."""
    clauses = []
    for ci, clause in enumerate(rule["clause"]):
        by_key: dict[str, list[dict]] = {}
        run_means = []
        for r in per_run:
            c = r["clauses"][ci]
            if c["status"] == NA:
                continue
            for e in c["cases"]:
                by_key.setdefault(e["key"], []).append(e | {"run": r["run"], "op": c["op"],
                                                            "threshold": c["threshold"]})
            run_means.append(float(np.mean([e["statistic"] for e in c["cases"]])))
        tag = f"{rule['id']}/{ablate or ''}/{ci}"
        cases = [_case_summary(k, v, clause, stats, f"{tag}/{k}") for k, v in by_key.items()]
        effect = _mean_ci(run_means, case_rng(stats["seed"], tag, "effect"), stats)
        clauses.append({"kind": clause["kind"], "quantifier": clause.get("quantifier", "all"),
                        "statistic": statistic_name(clause), "short": _short(clause), "noun": _case_noun(clause),
                        "effect": effect, "cases": cases,
                        "k": next((r["clauses"][ci].get("k") for r in per_run if "k" in r["clauses"][ci]), None)})
    return {"clauses": clauses}


def evaluate_findings(runs: list, rules_path: str | os.PathLike | None = None,
                      statistics: dict | None = None) -> list[dict]:
    """Every finding of the rules file on every run, tested across runs.

    Args:
        runs: ``RunEvidence`` or analysed runs (``load_run_analysis``), unnamed ones named run0, run1, ...
        rules_path: rules file; default the packaged ``rules.toml`` (its [statistics] table sets alpha, the
            interval level, the numbers of permutations and bootstrap resamples, and the seed).
        statistics: settings that replace the rules file's (same keys).

    Returns:
        One JSON-ready dict per finding and ablation value: number, id, description, ablate, rank_split,
        score_split, n_runs, applicable_runs, holds_runs (runs where it held alone), verdict (holds, fails,
        inconclusive, not applicable), p (the Holm-corrected p that decides the verdict), share (cases holding /
        tested), clauses (per clause: statistic, effect {mean, ci, n} of the per-run mean over cases, verdict, p,
        cases with values per run, mean, ci, p, p_holm, verdict, runs_holding, runs_beyond_null), evidence (one
        line in words), method (the tests in words), runs (``evaluate_rule`` per run).
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
                        **_across(rule, applicable, stats, ablate), "runs": per_run})
    _decide(out, stats)
    return out


def _decide(findings: list[dict], stats: dict) -> None:
    """Holm over every tested case of every finding, then case, clause and finding verdicts and evidence."""
    cases = [c for f in findings for cl in f["clauses"] for c in cl["cases"]]
    for c, p in zip(cases, holm([np.nan if c["p"] is None else c["p"] for c in cases])):
        c["p_holm"] = None if not math.isfinite(p) else float(p)
    m = sum(c["p_holm"] is not None for c in cases)
    alpha = float(stats["alpha"])
    method = METHOD.format(m=m, **stats)
    for f in findings:
        for cl in f["clauses"]:
            for c in cl["cases"]:
                c["verdict"] = _case_verdict(c, alpha)
            cl["verdict"], cl["p"] = _quantified(cl["quantifier"], cl["cases"]) if cl["cases"] else (NA, None)
        verdicts = [cl["verdict"] for cl in f["clauses"]]
        if not f["applicable_runs"] or NA in verdicts:
            f["verdict"], f["p"] = NA, None
        elif all(v == HOLDS for v in verdicts):
            f["verdict"], f["p"] = HOLDS, max(cl["p"] for cl in f["clauses"])
        elif FAILS in verdicts:
            f["verdict"], f["p"] = FAILS, min(cl["p"] for cl in f["clauses"] if cl["verdict"] == FAILS)
        else:
            ps = [cl["p"] for cl in f["clauses"]]
            f["verdict"], f["p"] = INCONCLUSIVE, (None if None in ps else max(ps))
        tested = [c for cl in f["clauses"] for c in cl["cases"]]
        f["n_cases"] = len(tested)
        f["n_holding"] = sum(c["verdict"] == HOLDS for c in tested)
        f["share"] = f["n_holding"] / len(tested) if tested else None
        f["alpha"], f["method"] = alpha, method
        f["evidence"] = evidence(f)


def _clause_words(cl: dict, n_runs: int) -> str:
    cases, noun = cl["cases"], cl["noun"]
    counts = {v: sum(c["verdict"] == v for c in cases) for v in (HOLDS, FAILS, INCONCLUSIVE)}
    words = f"holds in {counts[HOLDS]} of {len(cases)} {noun if len(cases) != 1 else noun[:-1]}"
    rest = [f"fails in {counts[FAILS]}"] if counts[FAILS] else []
    rest += [f"inconclusive in {counts[INCONCLUSIVE]}"] if counts[INCONCLUSIVE] else []
    if rest:
        words += f" ({', '.join(rest)})"
    e = cl["effect"]
    words += f"; mean {cl['short']} = {signed(e['mean'])}"
    if e["ci"][0] is not None and math.isfinite(e["ci"][0]):
        words += f" [{signed(e['ci'][0])}, {signed(e['ci'][1])}]"
    return words + (f" over {n_runs} runs" if n_runs != 1 else " in 1 run")


def run_words(run: dict) -> str:
    """How many cases of each clause hold in one run ("3 of 12 pairs hold in seed42"), or why it does not apply."""
    if run["status"] == NA:
        return f"{run['run']}: not applicable ({run['reason']})"
    parts = []
    for c in run["clauses"]:
        noun = ("tag" if len(c["cases"][0]["tags"]) == 1 else "pair") + ("s" if c["n_cases"] != 1 else "")
        parts.append(f"{c['n_holding']} of {c['n_cases']} {noun} hold" + ("s" if c["n_cases"] == 1 else ""))
    return f"{run['run']}: {', '.join(parts)}"


def _single_run_words(f: dict) -> str:
    """With one run there is no test across runs: say how many cases hold in that run."""
    run = next(r for r in f["runs"] if r["status"] != NA)
    return run_words(run).split(": ", 1)[1] + f" in {run['run']}; no test across runs (it needs at least 2 runs)"


def evidence(f: dict) -> str:
    """The finding's evidence in one line of plain words."""
    if f["verdict"] == NA:
        reasons = sorted({r["reason"] for r in f["runs"] if r.get("reason")})
        return f"not applicable: {'; '.join(reasons) or 'no run'}"
    n_runs = f["applicable_runs"]
    if n_runs == 1:
        return _single_run_words(f)
    text = "; ".join(_clause_words(cl, n_runs) for cl in f["clauses"])
    if f["ablate"]:
        text += f" ({f['ablate']} ablation, ranked on {f['rank_split']}, scored on {f['score_split']})"
    return text


def case_words(c: dict) -> str:
    """One case across runs in words: statistic, interval, corrected p, verdict, runs beyond the within-run null."""
    lo, hi = c["ci"]
    ci = f" [{signed(lo)}, {signed(hi)}]" if lo is not None and math.isfinite(lo) else ""
    text = f"{c['key']}: {signed(c['mean'])}{ci}, Holm p = {p_text(c['p_holm'])}, {c['verdict']}"
    if c["runs_with_null"]:
        text += f"; beyond the within-run null in {c['runs_beyond_null']} of {c['runs_with_null']} runs"
    return text


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    return x


def write_findings(path: str | os.PathLike, results: list[dict]) -> None:
    """Write ``evaluate_findings`` results to ``path`` (findings.json: a JSON list, NaN as null) atomically."""
    atomic_write_text(path, json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n")


def finding_label(f: dict) -> str:
    """The finding's number, with its ablation value when it has one ("9 (mean)")."""
    return f"{f['number']}" + (f" ({f['ablate']})" if f.get("ablate") else "")


def findings_table(results: list[dict]) -> str:
    """A plain-text table of ``evaluate_findings`` results: finding, verdict, corrected p, evidence."""
    lines = [f"{'#':<9} {'finding':<32} {'verdict':<15} {'p (Holm)':>8}  evidence"]
    for f in results:
        lines.append(f"{finding_label(f):<9} {f['id']:<32} {f['verdict']:<15} {p_text(f['p']):>8}  {f['evidence']}")
    if results:
        lines.append(f"method: {results[0]['method']}")
    return "\n".join(lines) + "\n"
