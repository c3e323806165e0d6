"""The findings' verdicts in words: numbers as the report prints them, one run's and one finding's evidence in a
line, and the plain-text findings table."""

from __future__ import annotations

import math
from fractions import Fraction

from nerve.analysis.meta import CONTRADICTED, HOLDS, INCONCLUSIVE, NEGLIGIBLE, NOT_TESTABLE
from nerve.analysis.meta import p_text as _p_text

NA = "not applicable"
CLASSES = (HOLDS, CONTRADICTED, NEGLIGIBLE, INCONCLUSIVE, NOT_TESTABLE)


def signed(x, digits: int = 2) -> str:
    """Signed, two decimals (four below 0.01, so that a small effect is not shown as 0.00)."""
    if x is None or not math.isfinite(x):
        return "–"
    digits = digits if abs(x) >= 0.01 or x == 0 else digits + 2
    return f"{x:+.{digits}f}".replace("-", "−")


def p_text(p, floor: float | None = None) -> str:
    """A p-value in two significant digits (scientific below 0.001), "–" for none; a p at its ``floor`` (a
    random-draw p: 1/(draws + 1)) as "< 1/(draws + 1)"."""
    label = None
    if floor is not None and floor > 0:
        frac = Fraction(floor).limit_denominator(100_000)
        label = f"1/{frac.denominator}" if frac.numerator == 1 else f"{floor:.2g}"
    return _p_text(p, floor, label)


def interval_text(ci) -> str:
    lo, hi = ci if ci else (None, None)
    return f"[{signed(lo)}, {signed(hi)}]" if lo is not None and math.isfinite(lo) else ""


def finding_label(f: dict) -> str:
    """The finding's number, with its ablation value when it has one ("9 (mean)")."""
    return f"{f['number']}" + (f" ({f['ablate']})" if f.get("ablate") else "")


def counts_text(counts: dict, n: int, noun: str) -> str:
    """"holds in 7 of 9 tags (negligible in 2)": the largest class first, the others in brackets."""
    noun = noun if n != 1 else noun[:-1]
    present = [(v, counts.get(v, 0)) for v in CLASSES if counts.get(v, 0)]
    if not present:
        return f"no {noun}"
    first = HOLDS if counts.get(HOLDS) else present[0][0]
    rest = [f"{v} in {c}" for v, c in present if v != first]
    return f"{first} in {counts.get(first, 0)} of {n} {noun}" + (f" ({', '.join(rest)})" if rest else "")


def run_words(run: dict) -> str:
    """How many cases of each clause hold in one run ("3 of 12 pairs hold in seed42"), or why it does not apply.
    In one run a case "holds" when its statistic lies on the rule's side (no test: a description)."""
    if run["status"] == NA:
        return f"{run['run']}: not applicable ({run['reason']})"
    parts = []
    for c in run["clauses"]:
        noun = ("tag" if len(c["cases"][0]["tags"]) == 1 else "pair") + ("s" if c["n_cases"] != 1 else "")
        parts.append(f"{c['n_holding']} of {c['n_cases']} {noun} hold" + ("s" if c["n_cases"] == 1 else ""))
    return f"{run['run']}: {', '.join(parts)}"


def _clause_words(cl: dict, n_runs: int) -> str:
    words = counts_text(cl["counts"], len(cl["cases"]), cl["noun"])
    e = cl["effect"]
    words += f"; {cl['short']} = {signed(e['mean'])}"
    ci = interval_text(e["ci"])
    if ci:
        words += f" {ci}"
    return words + (f" over {n_runs} runs" if n_runs != 1 else " in 1 run")


def evidence(f: dict) -> str:
    """The finding's evidence in one line of plain words."""
    if f["verdict"] == NA:
        reasons = sorted({r["reason"] for r in f["runs"] if r.get("reason")})
        return f"not applicable: {'; '.join(reasons) or 'no run'}"
    n_runs = f["applicable_runs"]
    text = "; ".join(_clause_words(cl, n_runs) for cl in f["clauses"])
    if n_runs == 1:
        run = next(r for r in f["runs"] if r["status"] != NA)
        text += f" ({run_words(run).split(': ', 1)[1]} in {run['run']}; no test across runs: it needs at least 2)"
    if n_runs > 1 and any(cl.get("within_counts") for cl in f["clauses"]):
        within = "; ".join(counts_text(cl["within_counts"], len(cl["cases"]), cl["noun"]) for cl in f["clauses"])
        text += f"; for these trained models alone (fixed effect): {within}"
    if f["ablate"]:
        text += f" ({f['ablate']} ablation, ranked on {f['rank_split']}, scored on {f['score_split']})"
    return text


def case_words(c: dict) -> str:
    """One case across runs in words: effect, interval, test, corrected p, verdict, population."""
    text = f"{c['key']}: {signed(c['mean'])} {interval_text(c['ci'])}".rstrip()
    if c["verdict"] == NOT_TESTABLE:
        return f"{text}, cannot be tested ({c['reason']})"
    text += f" ({c['level']:.2%} interval), Holm p = {p_text(c['p_holm'])}, {c['verdict']} (δ = {c['sesoi']:g})"
    t = f", t = {c['t']:.2f}" if c.get("t") is not None and math.isfinite(c["t"]) else ""
    text += f"; {c['test']}{t}; population: {c['population']}"
    if c["runs_with_null"]:
        text += (f"; beyond the within-run null in {c['runs_beyond_null']} of {c['runs_with_null']} runs "
                 f"(median p {p_text(c['null_p_median'], c.get('null_floor'))})")
    return text


def findings_table(results: list[dict]) -> str:
    """A plain-text table of ``evaluate_findings`` results: finding, verdict, corrected p, evidence."""
    lines = [f"{'#':<9} {'finding':<32} {'verdict':<16} {'p (Holm)':>8}  evidence"]
    for f in results:
        lines.append(f"{finding_label(f):<9} {f['id']:<32} {f['verdict']:<16} {p_text(f['p']):>8}  {f['evidence']}")
    if results:
        lines.append(f"method: {results[0]['method']}")
    return "\n".join(lines) + "\n"
