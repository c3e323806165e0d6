"""The study report: one self-contained HTML file (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import math
from datetime import UTC, datetime
from pathlib import Path

from nerve.io import atomic_write_text
from nerve.report.findings_section import findings_section
from nerve.report.grid_section import findings_by_variant, findings_contrasts, grid_table, layout_table
from nerve.report.methods_section import methods_section

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;line-height:1.4;padding:0 1em}
h1,h2,h3{font-weight:600} table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right} th{background:#f3f3f3}
.nowrap{overflow-x:auto} .nowrap table{font-size:0.8em} .nowrap td{white-space:nowrap;padding:2px 4px}
td.l,th.l{text-align:left} .yes{color:#1a7f37;font-weight:600} .no{color:#b42318;font-weight:600}
.na{color:#888} figure{display:inline-block;margin:0.5em;vertical-align:top} figcaption{font-size:0.85em;color:#555}
img{max-width:100%;height:auto;border:1px solid #eee} details{margin:0.5em 0} summary{cursor:pointer;font-weight:600}
tr.cases>td{border-top:none;padding-top:0} tr.cases summary{font-weight:400;font-size:0.9em}
"""

# Marks the page once every image has loaded (data-images-ok / data-images-failed): the headless browser test reads it.
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images-ok', String(imgs.length - bad.length));
  document.body.setAttribute('data-images-failed', String(bad.length));
});
"""


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = html.escape(caption)
    return f'<figure><img alt="{cap}" src="data:image/png;base64,{data}"><figcaption>{cap}</figcaption></figure>'


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return html.escape(str(x))


def _table(header: list[str], rows: list[list], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _run_table(runs: list[dict]) -> str:
    tags = list(runs[0]["per_tag_accuracy"]) if runs else []
    header = ["variant", "seed", "best epoch", "dev F1", "test F1", "test acc.", *tags, "train s"]
    rows = [[html.escape(r["variant"]), r["seed"], r["best_epoch"], _fmt(r["dev_f1"]), _fmt(r["test_f1"]),
             _fmt(r["test_accuracy"]), *[_fmt(r["per_tag_accuracy"].get(t), 3) for t in tags],
             _fmt(r["train_seconds"], 1)] for r in runs]
    return _table(header, rows, left=1)


def _figures(folder: Path, title: str, open_: bool = False, names: set[str] | None = None) -> str:
    """The PNG figures of ``folder`` in a collapsible section: those named in ``names`` (the files the stage that
    wrote the folder listed; figures an earlier run left behind are not shown), or every one without it."""
    pngs = sorted(folder.glob("*.png")) if folder.is_dir() else []
    pngs = [p for p in pngs if names is None or p.name in names]
    if not pngs:
        return ""
    imgs = "".join(_img(p, p.stem.replace("_", " ")) for p in pngs)
    return f"<details{' open' if open_ else ''}><summary>{html.escape(title)}</summary>{imgs}</details>"


def _recorded(analysis: Path) -> set[str]:
    """The files an analysis folder's completion marker lists."""
    from nerve.folder import read_marker

    return set((read_marker(analysis, "complete.json") or {}).get("files", {}))


def _per_run_figures(runs: list[dict], split: str) -> str:
    """The figures of the runs whose analysis drew them, and for the others the command that draws them."""
    recorded = {r["run_dir"]: _recorded(Path(r["run_dir"]) / "analysis") for r in runs}
    drawn = [r for r in runs if any(n.endswith(".png") for n in recorded[r["run_dir"]])]
    parts = [_figures(Path(r["run_dir"]) / "analysis", f"seed {r['seed']}: sensitivity, ranking, ablation sweeps, "
                      f"per-tag accuracy on {split}; ranking methods", open_=(i == 0), names=recorded[r["run_dir"]])
             for i, r in enumerate(drawn)]
    rest = [r for r in runs if r not in drawn]
    if rest:
        seeds = ", ".join(str(r["seed"]) for r in rest)
        run = Path(rest[0]["run_dir"])
        cmd = html.escape(f"nerve plot analysis {run / 'analysis'} --out {run / 'figures'}")
        parts.append(f"<p>The analyses of seed{'s' * (len(rest) > 1)} {html.escape(seeds)} hold every table but no "
                     f"figures (the study draws the first seed's); draw a run's from its tables with "
                     f"<code>{cmd}</code>.</p>")
    return "".join(parts)


def _explorer(out: Path) -> str:
    from nerve.explore.page import explorer_link

    link = explorer_link(out)
    if link:
        return f'<p><a href="{html.escape(link)}">Open the explorer</a>: units, tags and tokens in context.</p>'
    return ("<p>Explorer (units, tags and tokens in context): <code>nerve explore "
            f"{html.escape(str(out))} --out {html.escape(str(out / 'explore'))}</code>, then re-run the study "
            "command to link it here.</p>")


def _setup(setup: dict) -> str:
    """What every run shares: config, corpus, seeds and the study-wide settings (``--set``)."""
    if not setup:
        return ""
    seeds = setup.get("seeds")
    text = (f"Config <code>{html.escape(str(setup.get('config')))}</code> on "
            f"<code>{html.escape(str(setup.get('data') or 'its own corpus'))}</code>"
            + (f", {seeds} seed(s) a variant" if seeds else ""))
    settings = setup.get("settings") or []
    text += ("; settings of every run: " + ", ".join(f"<code>{html.escape(s)}</code>" for s in settings)
             if settings else "; no study-wide settings")
    return f"<p class=\"setup\">{text}.</p>"


def write_report(out: Path, summary: dict, grid=None) -> Path:
    """Write ``out/report.html`` from a study summary (see ``nerve.study.summarise``)."""
    variants = summary["variants"]
    all_runs = [r for v in variants.values() for r in v["runs"]]
    parts = [f"<h1>nerve study report</h1><p>{html.escape(str(out))} — "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {len(all_runs)} runs, "
             f"{len(variants)} config variant(s)</p>", _setup(summary.get("setup") or {}), _explorer(out),
             "<h2>Runs</h2>",
             "<p>Scores on the test split; F1 is conlleval's entity F1.</p>", _run_table(all_runs)]
    if summary.get("failed"):
        parts += ["<h2>Failed runs</h2>", "<p>These runs stopped with an error and are left out of every table and "
                  "figure below; re-running the study command retries them.</p>",
                  _table(["variant", "seed", "error"], [[html.escape(f["variant"]), f["seed"], html.escape(f["error"])]
                                                        for f in summary["failed"]], left=3)]
    if grid:
        parts += ["<h2>Grid</h2>", layout_table(variants, grid, summary.get("failed", [])), grid_table(variants),
                  "<h2>Findings × architecture</h2>", findings_by_variant(variants), findings_contrasts(variants)]
    for name, v in variants.items():
        if v.get("methods"):
            parts.append(methods_section(name, v["methods"], _table, _img))
        parts.append(f"<h2>Findings — {html.escape(name)}</h2>")
        parts.append(findings_section(v["findings"], v.get("analysis_split", "dev")))
        parts.append(f"<h2>Comparison across seeds — {html.escape(name)}</h2>")
        split = html.escape(v.get("analysis_split", "dev"))
        written = {*v["comparison"].get("files", []), *(v.get("methods") or {}).get("files", [])}
        parts.append(_figures(Path(v["compare_dir"]), f"tag × tag matrices of the {split} analysis (mean over runs; "
                              "each run's as CSV in the comparison folder), and the ranking methods", True, written))
        parts.append(f"<h2>Per-run analysis — {html.escape(name)}</h2>")
        parts.append(_per_run_figures(v["runs"], split))
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nerve study</title>"
            f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>{''.join(parts)}</body></html>")
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
