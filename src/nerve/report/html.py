"""The study report: an HTML page in the study folder with a table of contents, each figure once with its caption.

Figures are shown from their files in the study folder (the 300-dpi PNG, by a path relative to the report, scaled by
the browser to the size it is shown at; its SVG and PDF linked beside it), so the page stays small (within
``SIZE_BUDGET`` bytes) and writing it decodes no image; a copied or moved study folder keeps its report working.
Each caption is the one the function that drew the figure stored in its PNG
(``nerve.report.figures.read_caption``)."""

from __future__ import annotations

import html
import math
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from nerve.io import atomic_write_text
from nerve.report.bases_section import bases_section
from nerve.report.findings_section import findings_section
from nerve.report.grid_section import findings_by_variant, findings_contrasts, grid_table, layout_table
from nerve.report.methods_section import methods_section

SIZE_BUDGET = 2_000_000  # bytes: the report of the default study (tests/test_report_browser.py checks a study's)
SHOW_WIDTH, SHOW_HEIGHT = 560, 760  # CSS px: the largest a figure is shown (two a row in the page's 1200 px)
WIDE_INCHES, WIDE_WIDTH = 8.0, 1150  # a figure this wide (small multiples) takes a whole row, up to this width

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;line-height:1.4;padding:0 1em}
h1,h2,h3{font-weight:600} h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right} th{background:#f3f3f3}
.nowrap{overflow-x:auto} .nowrap table{font-size:0.8em} .nowrap td{white-space:nowrap;padding:2px 4px}
td.l,th.l{text-align:left} .yes{color:#1a7f37;font-weight:600} .no{color:#b42318;font-weight:600}
.na{color:#888} .part{color:#8a6d00;font-weight:600} details{margin:0.5em 0} summary{cursor:pointer;font-weight:600}
tr.cases>td{border-top:none;padding-top:0} tr.cases summary{font-weight:400;font-size:0.9em}
nav.toc{background:#f7f7f7;border:1px solid #e3e3e3;padding:0.4em 1.2em;margin:1em 0;font-size:0.92em}
nav.toc ol{margin:0.2em 0;padding-left:1.4em} nav.toc>ol>li{margin:0.15em 0}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1em 1.5em;align-items:start}
figure{margin:0.5em 0} figure.wide{grid-column:1/-1}
figure img{max-width:100%;height:auto;border:1px solid #eee;display:block}
figcaption{font-size:0.82em;color:#444;margin-top:0.3em} figcaption .files{color:#888;white-space:nowrap}
:target{scroll-margin-top:0.5em}
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

# Captions of figures drawn by an older nerve, whose files hold none: by the start of the file name.
LEGACY_CAPTIONS = (
    ("sensitivity_heatmap", "Every unit's sensitivity to every tag (red: positive)."),
    ("ranking_table", "Each tag's ten units of highest sensitivity, rank 1 at the top."),
    ("per_tag_accuracy", "The model's recall of each tag, token accuracy (ALL) and entity F1 (higher is better)."),
    ("ablation_grid", "One panel per tag: the change of its recall as its top, bottom or random units are set to 0."),
    ("ablation_", "Every tag's recall as the top units of one tag are set to 0."),
    ("methods_drop_", "Each ranking method's drop in a tag's score when its top units of the tag are intervened on "
                      "(k = 0 minus after; positive = worse)."),
    ("methods_curves_", "Each ranking method's drop in a tag's recall by k (k = 0 minus after; positive = worse)."),
    ("methods_agreement", "Units shared by the top-k lists of every two ranking methods."),
    ("methods_stability", "Each ranking method's top-k units shared by two runs after matching their units."),
    ("corr_", "Correlation over units of every two tags' sensitivities."),
    ("similarity_", "Cosine similarity of every two tags' output weights."),
    ("overlap_", "Units shared by every two tags' top-k lists."),
)


class Figures:
    """The report's figures: each embedded once, numbered, with its caption and links to its files.

    Args:
        out: the report's folder (links to the figure files are relative to it).
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.shown: set[Path] = set()

    def figure(self, path: Path, split: str = "", context: str = "") -> str:
        """One ``<figure>``; "" for a figure already shown. ``context`` (e.g. "test split, seed 42") is added to a
        caption that does not name the analysed ``split``."""
        from nerve.report.figures import read_caption

        path = Path(path).resolve()
        if path in self.shown or not path.is_file():
            return ""
        self.shown.add(path)
        number = len(self.shown)
        caption = read_caption(path) or next((c for stem, c in LEGACY_CAPTIONS if path.stem.startswith(stem)), "")
        if context and not re.search(rf"\b{re.escape(split)}\b", caption):
            caption = f"{caption.rstrip('.')} ({context})."
        width, height, wide = _display_size(path)
        files = " · ".join(f'<a href="{html.escape(self._link(f))}">{f.suffix[1:].upper()}</a>'
                           for f in (path.with_suffix(s) for s in (".png", ".svg", ".pdf")) if f.is_file())
        cap = html.escape(caption)
        kind = ' class="wide"' if wide else ""
        return (f'<figure id="figure-{number}"{kind}><a href="{html.escape(self._link(path))}"><img alt="{cap}" '
                f'width="{width}" height="{height}" src="{html.escape(self._link(path))}"></a>'
                f'<figcaption><b>Figure {number}.</b> {cap} <span class="files">{files}</span></figcaption></figure>')

    def grid(self, paths, split: str = "", context: str = "") -> str:
        """The figures of ``paths`` not shown yet, in a grid: two a row, a wide one (small multiples) a row."""
        items = "".join(self.figure(p, split, context) for p in paths)
        return f'<div class="figures">{items}</div>' if items else ""

    def _link(self, path: Path) -> str:
        try:
            return Path(os.path.relpath(path, self.out)).as_posix()
        except ValueError:  # another drive
            return path.as_uri()


def _display_size(path: Path) -> tuple[int, int, bool]:
    """(CSS width, CSS height, wide): the figure scaled to fit ``SHOW_WIDTH`` (``WIDE_WIDTH`` when it is
    ``WIDE_INCHES`` wide or more) x ``SHOW_HEIGHT`` CSS px, never above its own size at 96 px an inch (read from the
    PNG's header: nothing is decoded)."""
    from PIL import Image

    with Image.open(path) as img:
        dpi = float((img.info.get("dpi") or (96.0, 96.0))[0]) or 96.0
        w_css, h_css = img.width * 96.0 / dpi, img.height * 96.0 / dpi
        wide = img.width / dpi >= WIDE_INCHES
    scale = min(1.0, (WIDE_WIDTH if wide else SHOW_WIDTH) / w_css, SHOW_HEIGHT / h_css)
    return max(1, round(w_css * scale)), max(1, round(h_css * scale)), wide


class Sections:
    """Headings with unique anchors, collected for the table of contents."""

    def __init__(self):
        self.entries: list[tuple[int, str, str]] = []  # (level, anchor, title)

    def heading(self, level: int, title: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
        anchor, i = base, 1
        while any(a == anchor for _, a, _ in self.entries):
            i += 1
            anchor = f"{base}-{i}"
        self.entries.append((level, anchor, title))
        return f'<h{level} id="{anchor}">{html.escape(title)}</h{level}>'

    def toc(self) -> str:
        out, depth = [], 1
        for level, anchor, title in self.entries:
            level = 2 if level <= 2 else 3
            if level > depth:
                out.append("<ol>")
            elif level < depth:
                out.append("</li></ol></li>")
            elif out:
                out.append("</li>")
            depth = level
            out.append(f'<li><a href="#{anchor}">{html.escape(title)}</a>')
        out.append("</li>" + ("</ol></li>" if depth == 3 else ""))
        return f'<nav class="toc" aria-label="Contents"><b>Contents</b><ol>{"".join(out)}</ol></nav>'


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


def _recorded(analysis: Path) -> set[str]:
    """The files an analysis folder's completion marker lists."""
    from nerve.folder import read_marker

    return set((read_marker(analysis, "complete.json") or {}).get("files", {}))


def _per_run_figures(runs: list[dict], split: str, figs: Figures, sections: Sections, name: str) -> str:
    """The figures of the runs whose analysis drew them (each run's charts per tag in a gallery), and for the
    others the command that draws them."""
    recorded = {r["run_dir"]: _recorded(Path(r["run_dir"]) / "analysis") for r in runs}
    drawn = [r for r in runs if any(n.endswith(".png") for n in recorded[r["run_dir"]])]
    parts = []
    for r in drawn:
        folder = Path(r["run_dir"]) / "analysis"
        pngs = [folder / n for n in sorted(recorded[r["run_dir"]]) if n.endswith(".png")]
        per_tag = [p for p in pngs if p.stem.startswith("ablation_") and p.stem != "ablation_grid"]
        order = ("sensitivity_heatmap", "ranking_table", "per_tag_accuracy", "ablation_grid")
        main = sorted((p for p in pngs if p not in per_tag),
                      key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name))
        context = f"{split} split, seed {r['seed']}"
        parts += [sections.heading(3, f"Seed {r['seed']} — {name}"), figs.grid(main, split, context)]
        if per_tag:
            parts.append(f"<details><summary>The chart of each tag ({len(per_tag)}), seed {r['seed']}</summary>"
                         f"{figs.grid(per_tag, split, context)}</details>")
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


def _absolute(variants: dict, root: Path) -> dict:
    """The variants with their folders (as study.json stores them: relative to the study folder) made absolute."""
    at = lambda p: str(p if Path(p).is_absolute() else root / p)
    out = {}
    for name, v in variants.items():
        v = {**v, "compare_dir": at(v["compare_dir"]), "runs": [{**r, "run_dir": at(r["run_dir"])} for r in v["runs"]]}
        if v.get("methods"):
            v["methods"] = {**v["methods"], "compare_dir": at(v["methods"]["compare_dir"])}
        out[name] = v
    return out


def _changes(changes: list[dict], root: Path) -> str:
    """The run folders this invocation of the study trained afresh (counted), and those it resumed, extended,
    retrained, re-analysed or saw Ray retry (``study.engine.Change``, a table), or that it reused every run."""
    if not changes:
        return "<p>Every run and analysis was reused as it was: this invocation trained and analysed nothing.</p>"

    def rel(p: str) -> str:
        return str(Path(p).relative_to(root)) if Path(p).is_absolute() and Path(p).is_relative_to(root) else p

    fresh = [c for c in changes if c["action"] == "trained"]
    rest = [c for c in changes if c["action"] != "trained"]
    text = (f"<p>{len(fresh)} run{'s' * (len(fresh) != 1)} trained afresh (a new run folder each)"
            + ("" if rest else "; every other run was reused as it was") + ".</p>") if fresh else ""
    if rest:
        rows = [[html.escape(c["action"]), f"<code>{html.escape(rel(c['run_dir']))}</code>",
                 html.escape(c["detail"])] for c in rest]
        text += ("<p>Run folders that held a run before this invocation and that it changed:</p>"
                 + _table(["action", "run folder", "detail"], rows, left=3))
    return text


def write_report(out: Path, summary: dict, grid=None, study_dir: Path | None = None) -> Path:
    """Write ``out/report.html`` from a study summary (see ``nerve.study.summarise``, or study.json, whose
    relative folders are taken relative to ``study_dir``, default ``out``): a table of contents, then the runs,
    the grid, and per variant the ranking methods, findings, comparison and per-run figures, each figure once with
    the caption its drawing stored."""
    out = Path(out)
    variants = _absolute(summary["variants"], Path(study_dir or out))
    all_runs = [r for v in variants.values() for r in v["runs"]]
    figs, sec = Figures(out), Sections()
    parts = [sec.heading(2, "Runs"), "<p>Scores on the test split; F1 is conlleval's entity F1.</p>",
             _run_table(all_runs)]
    if "changes" in summary:
        parts += [sec.heading(2, "What this invocation did"), _changes(summary["changes"], Path(study_dir or out))]
    if summary.get("failed"):
        parts += [sec.heading(2, "Failed runs"), "<p>These runs stopped with an error and are left out of every table "
                  "and figure below; re-running the study command retries them.</p>",
                  _table(["variant", "seed", "error"], [[html.escape(f["variant"]), f["seed"], html.escape(f["error"])]
                                                        for f in summary["failed"]], left=3)]
    if grid:
        parts += [sec.heading(2, "Grid"), layout_table(variants, grid, summary.get("failed", [])), grid_table(variants),
                  sec.heading(2, "Findings × architecture"), findings_by_variant(variants),
                  findings_contrasts(variants)]
    for name, v in variants.items():
        split = v.get("analysis_split", "dev")
        context = f"{split} split, mean over {len(v['runs'])} run{'s' * (len(v['runs']) != 1)}"
        if v.get("methods"):
            parts.append(methods_section(name, v["methods"], _table,
                                         lambda paths, s=split, c=context: figs.grid(paths, s, c), sec.heading))
        parts.append(bases_section(name, v["compare_dir"], _table, sec.heading))
        parts.append(sec.heading(2, f"Findings — {name}"))
        parts.append(findings_section(v["findings"], split))
        parts.append(sec.heading(2, f"Comparison across seeds — {name}"))
        written = v["comparison"].get("files", [])
        pngs = [Path(v["compare_dir"]) / n for n in sorted(written) if n.endswith(".png")]
        means = sorted(pngs, key=lambda p: (not p.stem.endswith("_mean"), p.name))
        parts.append(f"<p>Tag × tag matrices of the {html.escape(split)} analysis, mean over the runs (each run's "
                     "and their standard deviation as CSV in the comparison folder).</p>"
                     + figs.grid(means, split, context))
        parts.append(sec.heading(2, f"Per-run analysis — {name}"))
        parts.append(_per_run_figures(v["runs"], html.escape(split), figs, sec, name))
    intro = (f"<h1>nerve study report</h1><p>{html.escape(str(out))} — {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, "
             f"{len(all_runs)} runs, {len(variants)} config variant(s)</p>{_setup(summary.get('setup') or {})}"
             f"{_explorer(out)}<p>Every figure links to its full-resolution PNG (300 dpi), and to its SVG and PDF "
             "where they were written. A drop is the score at k = 0 minus the score after the intervention: "
             "positive = worse.</p>")
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>nerve study</title>"
            f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>{intro}{sec.toc()}{''.join(parts)}"
            "</body></html>")
    path = out / "report.html"
    atomic_write_text(path, page)
    return path
