"""The report's findings section: per finding its verdict, the counts of each verdict class over its cases, the
effect with its interval, the test, the correction and the population; each finding's cases expandable, and the
tests stated in words."""

from __future__ import annotations

import html
import math

from nerve.analysis.verdict_words import CLASSES, interval_text
from nerve.analysis.verdicts import finding_label, p_text, run_words, signed

# red only for a claim contradicted beyond its smallest effect of interest; a negligible effect is grey
_CLASS = {"holds": "yes", "holds for most": "part", "contradicted": "no", "negligible": "na",
          "not applicable": "na", "cannot be tested": "na", "inconclusive": ""}


def _verdict(v: str) -> str:
    return f'<span class="{_CLASS.get(v, "")}">{html.escape(v)}</span>'


def _effect(cl: dict) -> str:
    e = cl["effect"]
    level = f" ({e['level']:.0%}, uncorrected)" if e.get("level") and interval_text(e["ci"]) else ""
    return f"{html.escape(cl['short'])} {signed(e['mean'])} {interval_text(e['ci'])}{level}".rstrip()


def _counts(counts: dict) -> str:
    return ", ".join(f"{_verdict(v)} {counts[v]}" for v in CLASSES if counts.get(v))


def _level(c: dict) -> str:
    lv = c.get("level")
    return f" <small>{lv:.2%}</small>" if lv is not None and math.isfinite(lv) else ""


def _cases_table(f: dict) -> str:
    rows = []
    for ci, cl in enumerate(f["clauses"]):
        for c in cl["cases"]:
            values = ", ".join(signed(v) for v in c["values"])
            null = (f"{c['runs_beyond_null']} / {c['runs_with_null']} (median p "
                    f"{p_text(c['null_p_median'], c.get('null_floor'))})" if c["runs_with_null"] else "–")
            w = c["within"]
            within = (f"{_verdict(w['verdict'])} {signed(w['effect'])} {interval_text(w['ci'])}"
                      if w["verdict"] != "cannot be tested" else _verdict(w["verdict"]))
            test = html.escape(f"{c['test']}; t of the claim (effect beyond δ) = {c['t']:.2f}"
                               if c["verdict"] != "cannot be tested" and c.get("t") is not None
                               and math.isfinite(c["t"])
                               else c.get("reason") or c.get("test") or "")
            rows.append(f"<tr><td class=\"l\">{html.escape(c['key'])}</td>"
                        f"<td class=\"l\">{html.escape(cl['statistic'])} {html.escape(c['op'])} {c['threshold']:g}"
                        f" ± δ {c['sesoi']:g}</td>"
                        f"<td>{signed(c['mean'])}</td><td>{interval_text(c['ci'])}{_level(c)}</td>"
                        f"<td>{p_text(c['p_holm'])}</td><td>{_verdict(c['verdict'])}</td>"
                        f"<td class=\"l\">{test}</td><td>{within}</td>"
                        f"<td>{c['runs_holding']} / {c['n']}</td><td>{null}</td>"
                        f"<td class=\"l\">{values}</td></tr>")
        if len(f["clauses"]) > 1 and ci < len(f["clauses"]) - 1:
            rows.append('<tr><td class="l" colspan="11">next clause</td></tr>')
    head = ("<tr><th class=\"l\">case</th><th class=\"l\">claim</th><th>effect</th><th>interval (Holm level)</th>"
            "<th>p (Holm)</th><th>verdict</th><th class=\"l\">test</th>"
            "<th>these trained models (fixed effect)</th><th>runs on the rule's side</th>"
            "<th>runs beyond the within-run null</th><th class=\"l\">per run</th></tr>")
    runs = "".join(f"<li>{html.escape(run_words(r))}</li>" for r in f["runs"])
    return (f"<details><summary>the {f['n_cases']} cases of finding {html.escape(finding_label(f))}, and each run"
            f"</summary><table><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table><ul>{runs}</ul></details>")


def _population(f: dict) -> str:
    pops = sorted({c["population"] for cl in f["clauses"] for c in cl["cases"] if c.get("population")})
    return html.escape("; ".join(pops)) or "–"


def _correction(f: dict) -> str:
    c = next((c for cl in f["clauses"] for c in cl["cases"] if c.get("correction")), None)
    return html.escape(c["correction"].split(";")[0]) if c else "–"


def findings_section(findings: list[dict], analysis_split: str) -> str:
    """HTML of the findings of one variant (``verdicts.evaluate_findings``)."""
    if not findings:
        return "<p>No findings evaluated.</p>"
    rows = []
    for f in findings:
        applicable = f["verdict"] != "not applicable"
        effect = "; ".join(_effect(cl) for cl in f["clauses"]) if applicable else "–"
        counts = _counts(f.get("counts", {})) if applicable else "–"
        detail = _cases_table(f) if applicable and f["n_cases"] else ""
        rows.append(f"<tr><td class=\"l\">{html.escape(finding_label(f))}</td>"
                    f"<td class=\"l\">{html.escape(f['description'])}</td><td>{_verdict(f['verdict'])}</td>"
                    f"<td>{_verdict(f.get('within_verdict', '–')) if applicable else '–'}</td>"
                    f"<td>{counts}</td><td>{effect}</td><td>{p_text(f['p'])}</td>"
                    f"<td class=\"l\">{_correction(f) if applicable else '–'}</td>"
                    f"<td class=\"l\">{_population(f) if applicable else '–'}</td>"
                    f"<td class=\"l\">{html.escape(f['evidence'])}</td></tr>")
        if detail:
            rows.append(f'<tr class="cases"><td></td><td class="l" colspan="9">{detail}</td></tr>')
    head = ("<tr><th class=\"l\">#</th><th class=\"l\">finding</th><th>verdict</th>"
            "<th>these trained models alone</th><th>cases by verdict</th>"
            "<th>effect [interval]</th><th>p (Holm)</th><th class=\"l\">correction</th>"
            "<th class=\"l\">population</th><th class=\"l\">evidence</th></tr>")
    ablation = next((f for f in findings if f.get("ablate") and f.get("rank_split")), None)
    where = (f"Findings 1–8 read the {html.escape(analysis_split)} analysis' sensitivities and output weights. "
             + (f"The ablation findings rank units on {html.escape(ablation['rank_split'])} and score on "
                f"{html.escape(ablation['score_split'])}, once per ablation value (zero, and each unit's mean on the "
                "ranking split). " if ablation else ""))
    method = html.escape(findings[0]["method"])
    return (f"<p>{where}Method: {method} The p column is the Holm-adjusted p that decides the verdict. A finding "
            "is contradicted only where a case lies beyond its smallest effect of interest the other way; a case "
            "whose effect is below it is negligible (grey), never a failure. docs/STATISTICS.md has the method.</p>"
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
