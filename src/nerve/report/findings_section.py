"""The report's findings section: per finding its verdict, effect with interval, corrected p and share of cases
holding, each finding's cases expandable, and the tests stated in words."""

from __future__ import annotations

import html
import math

from nerve.analysis.verdicts import finding_label, p_text, run_words, signed

_CLASS = {"holds": "yes", "fails": "no", "not applicable": "na", "inconclusive": ""}


def _effect(cl: dict) -> str:
    e = cl["effect"]
    lo, hi = e["ci"]
    ci = f" [{signed(lo)}, {signed(hi)}]" if lo is not None and math.isfinite(lo) else ""
    return f"{html.escape(cl['short'])} {signed(e['mean'])}{ci}"


def _verdict(v: str) -> str:
    return f'<span class="{_CLASS.get(v, "")}">{html.escape(v)}</span>'


def _cases_table(f: dict) -> str:
    rows = []
    for ci, cl in enumerate(f["clauses"]):
        for c in cl["cases"]:
            lo, hi = c["ci"]
            values = ", ".join(signed(v) for v in c["values"])
            null = f"{c['runs_beyond_null']} / {c['runs_with_null']}" if c["runs_with_null"] else "–"
            rows.append(f"<tr><td class=\"l\">{html.escape(c['key'])}</td>"
                        f"<td class=\"l\">{html.escape(cl['statistic'])} {html.escape(c['op'])} {c['threshold']:g}</td>"
                        f"<td>{signed(c['mean'])}</td><td>[{signed(lo)}, {signed(hi)}]</td><td>{p_text(c['p'])}</td>"
                        f"<td>{p_text(c['p_holm'])}</td><td>{_verdict(c['verdict'])}</td>"
                        f"<td>{c['runs_holding']} / {c['n']}</td><td>{null}</td>"
                        f"<td class=\"l\">{values}</td></tr>")
        if len(f["clauses"]) > 1 and ci < len(f["clauses"]) - 1:
            rows.append('<tr><td class="l" colspan="10">next clause</td></tr>')
    head = ("<tr><th class=\"l\">case</th><th class=\"l\">holds when</th><th>mean</th><th>95 % interval</th>"
            "<th>p</th><th>p (Holm)</th><th>verdict</th><th>runs holding</th><th>runs beyond null</th>"
            "<th class=\"l\">per run</th></tr>")
    runs = "".join(f"<li>{html.escape(run_words(r))}</li>" for r in f["runs"])
    return (f"<details><summary>the {f['n_cases']} cases of finding {html.escape(finding_label(f))}, and each run"
            f"</summary><table><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table><ul>{runs}</ul></details>")


def findings_section(findings: list[dict], analysis_split: str) -> str:
    """HTML of the findings of one variant (``verdicts.evaluate_findings``)."""
    if not findings:
        return "<p>No findings evaluated.</p>"
    rows = []
    for f in findings:
        applicable = f["verdict"] != "not applicable"
        effect = "; ".join(_effect(cl) for cl in f["clauses"]) if applicable else "–"
        share = f"{f['n_holding']} / {f['n_cases']}" if applicable else "–"
        detail = _cases_table(f) if applicable and f["n_cases"] else ""
        rows.append(f"<tr><td class=\"l\">{html.escape(finding_label(f))}</td>"
                    f"<td class=\"l\">{html.escape(f['description'])}</td><td>{_verdict(f['verdict'])}</td>"
                    f"<td>{effect}</td><td>{p_text(f['p'])}</td><td>{share}</td>"
                    f"<td class=\"l\">{html.escape(f['evidence'])}</td></tr>")
        if detail:
            rows.append(f'<tr class="cases"><td></td><td class="l" colspan="6">{detail}</td></tr>')
    head = ("<tr><th class=\"l\">#</th><th class=\"l\">finding</th><th>verdict</th><th>effect, mean [95 % interval]"
            "</th><th>p (Holm)</th><th>cases holding</th><th class=\"l\">evidence</th></tr>")
    ablation = next((f for f in findings if f.get("ablate") and f.get("rank_split")), None)
    where = (f"Findings 1–8 read the {html.escape(analysis_split)} analysis' sensitivities and output weights. "
             + (f"The ablation findings rank units on {html.escape(ablation['rank_split'])} and score on "
                f"{html.escape(ablation['score_split'])}, once per ablation value (zero, and each unit's mean on the "
                "ranking split). " if ablation else ""))
    method = html.escape(findings[0]["method"])
    return (f"<p>{where}Method: {method} The p column is the corrected p that decides the verdict "
            "(for a finding whose every case must hold: the largest of its cases').</p>"
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
