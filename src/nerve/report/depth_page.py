"""``nerve depth``'s report: ``OUT/report.html`` with the runs, the setup in words, the ranking methods site by site
(figure and table: each method's excess over random units with its interval and Holm p) and Xin et al.'s findings
site by site (figure and table: the verdict and effect per finding and site, the tests in words)."""

from __future__ import annotations

import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path

from nerve.analysis.verdicts import finding_label, p_text
from nerve.io import atomic_write_text
from nerve.report.findings_section import _verdict
from nerve.report.html import CSS, SCRIPT, Figures, Sections, _table


def _f(x, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(float(x)) else f"{float(x):+.{digits}f}"


def _runs_table(run_dirs: list) -> str:
    rows = []
    for d in run_dirs:
        try:
            test = json.loads((Path(d) / "metrics.json").read_text(encoding="utf-8")).get("test", {})
        except (OSError, ValueError):
            test = {}
        f1 = test.get("f1")
        rows.append([html.escape(Path(d).name), html.escape(str(Path(d).resolve())),
                     "–" if f1 is None else f"{float(f1):.4f}"])
    return _table(["run", "folder", "test F1"], rows, left=2)


def _methods_table(summary: list[dict]) -> str:
    sites = [s for _, s in sorted({(int(r["depth"]), r["site"]) for r in summary})]
    methods = list(dict.fromkeys(r["method"] for r in summary))
    cell = {(r["site"], r["method"]): r for r in summary}
    rows = []
    for s in sites:
        row = [html.escape(s)]
        for m in methods:
            r = cell.get((s, m))
            if r is None:
                row.append("–")
                continue
            text = f"{_f(r['excess_mean'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}] <small>p<sub>Holm</sub> " \
                   f"{p_text(r['p_holm'])}</small>"
            separated = r["p_holm"] is not None and math.isfinite(r["p_holm"]) and r["p_holm"] < 0.05
            row.append(f"<b>{text}</b>" if separated else text)
        rows.append(row)
    return f'<div class="nowrap">{_table(["site", *methods], rows)}</div>'


def _findings_table(rows: list[dict]) -> str:
    sites = [s for _, s in sorted({(int(r["depth"]), r["site"]) for r in rows})]
    key = (lambda r: (finding_label({"number": r["finding"], "ablate": r["ablate"]}), r["id"]))
    findings = list(dict.fromkeys(key(r) for r in sorted(rows, key=lambda r: (int(r["finding"]), r["ablate"]))))
    cell = {(key(r), r["site"]): r for r in rows}
    out = []
    for f in findings:
        row = [html.escape(f[0]), html.escape(f[1])]
        for s in sites:
            r = cell.get((f, s))
            row.append("–" if r is None else f"{_verdict(r['verdict'])}<br><small>{_f(r['effect'], 2)} "
                       f"{r['n_holding']}/{r['n_cases']}</small>")
        out.append(row)
    return f'<div class="nowrap">{_table(["#", "finding", *sites], out, left=2)}</div>'


def write_depth_report(out: Path, study, spec, run_dirs: list) -> Path:
    """Write ``out/report.html`` for a ``depth_table.DepthStudy`` measured with ``spec`` (a ``DepthSpec``) on
    ``run_dirs``; figures ``depth.png`` and ``depth_findings.png`` are shown from ``out``."""
    out = Path(out)
    figs, sec = Figures(out), Sections()
    value = "their ranking-split (dev) mean" if spec.intervention == "mean" else "0"
    n = len(run_dirs)
    setup = (f"<p>Sites: {html.escape(', '.join(sorted({r['site'] for r in study.summary})))}. Methods ranked the "
             f"units on the first {spec.rank_sentences or 'all'} dev sentences with the model's predicted tags; "
             f"each tag's top {spec.k} units at a site were set to {value} inside the model (a hook on the real "
             f"module; the model re-run from that layer on), scored on the first {spec.score_sentences or 'all'} "
             f"test sentences, against {spec.random_draws} random {spec.k}-unit sets at the same site "
             f"(seed {spec.seed}).</p>")
    parts = [sec.heading(2, "Runs"), _runs_table(run_dirs), sec.heading(2, "Setup"), setup,
             sec.heading(2, "Ranking methods, site by site"),
             "<p>Excess = the target tag's recall drop under the method's top units minus the random sets' drop, mean "
             f"over tags, then over {n} run{'s' * (n != 1)}, with its 95 % t interval (df = runs − 1) and the "
             "one-sample t test's p after Holm over every site × method (bold: p<sub>Holm</sub> &lt; 0.05). The "
             "population: these runs (seeds of one recipe and model), not transformers in general.</p>",
             figs.grid([out / "depth.png"]), _methods_table(study.summary)]
    if study.findings:
        alpha = study.findings[0]["alpha"]
        parts += [sec.heading(2, "Xin et al.'s findings, site by site"),
                  "<p>Each finding of Xin, Lin &amp; Yu (2019) judged at every site: sensitivities with the tag "
                  "layer's weights replaced by the site's local read-out (the gradient of each tag's summed logit; "
                  "exactly Xin et al.'s at the tag layer's input), cosine findings on the read-out's rows, ablation "
                  "findings on the sensitivity ranking's top units against the random sets. Across runs: a "
                  "random-effects meta-analysis per case (Hartung-Knapp t), Holm over a site's cases at "
                  f"α = {alpha:.4g} (0.05 over the sites: Bonferroni), each case judged against its smallest "
                  "effect of interest δ. Cells: the verdict, the first clause's effect and the cases holding of "
                  "those tested. Every case, run and test: depth_findings.json.</p>",
                  figs.grid([out / "depth_findings.png"]), _findings_table(study.findings)]
    intro = (f"<h1>nerve depth report</h1><p>{html.escape(str(out))} — {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, "
             f"{n} run{'s' * (n != 1)}. A drop is the recall before minus after the intervention: positive = "
             "worse.</p>")
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nerve depth</title>"
            f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>{intro}{sec.toc()}{''.join(parts)}"
            "</body></html>")
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
