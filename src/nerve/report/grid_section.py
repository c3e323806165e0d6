"""The report's grid section: every variant over its seeds (NaN-aware, with counts), the study's char × word ×
inference layout beside the published numbers, and the findings × architecture table."""

from __future__ import annotations

import html

from nerve.grid import (
    PUBLISHED_SOURCES,
    cell_summary,
    finding_contrasts,
    findings_by_label,
    layout_cells,
    short_label,
    study_layout,
)

_CLASS = {"holds": "yes", "holds for most": "part", "contradicted": "no", "negligible": "na",
          "not applicable": "na", "inconclusive": "", "cannot be tested": "na"}
_SHORT = {"holds": "holds", "holds for most": "most", "contradicted": "contradicted", "negligible": "≈0",
          "not applicable": "n/a", "inconclusive": "?", "cannot be tested": "untestable"}


def _minutes(seconds: float) -> str:
    """A run's training time: seconds below two minutes, else minutes."""
    return f"{seconds:.0f} s a run" if seconds < 120 else f"{seconds / 60:.1f} min a run"


def _ms(t: tuple, scale: float = 1.0, digits: int = 2, of: int | None = None) -> str:
    """"mean ± sd" of a (mean, sd, n) triple, "(n of N)" when some runs lack the value, "–" when none has it."""
    mean, sd, n = t
    if mean is None:
        return '<span class="na">–</span>'
    text = f"{mean * scale:.{digits}f}" + (f" ± {sd * scale:.{digits}f}" if sd is not None else "")
    return text + (f" <span class=\"na\">({n} of {of})</span>" if of is not None and n < of else "")


def grid_table(variants: dict) -> str:
    """Every variant: runs, dev and test F1 (%), training seconds and per-tag test accuracy (%), mean ± sd over
    the runs that have the value."""
    tags = list(dict.fromkeys(t for v in variants.values() for r in v["runs"] for t in r["per_tag_accuracy"]))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["runs", "dev F1", "test F1", "train s", *tags])
    rows = []
    for name, v in variants.items():
        c = cell_summary(v["runs"])
        n = c["n_runs"]
        cells = [str(n), _ms(c["dev_f1"], 100, of=n), _ms(c["test_f1"], 100, of=n),
                 _ms(c["train_seconds"], 1, 0, of=n),
                 *[_ms(c["per_tag"].get(t, (None, None, 0)), 100, 1, of=n) for t in tags]]
        rows.append(f"<tr><td class=\"l\">{html.escape(name)}</td>" + "".join(f"<td>{x}</td>" for x in cells)
                    + "</tr>")
    return (f"<div class=\"nowrap\"><table><thead><tr><th class=\"l\">variant</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def layout_table(variants: dict, grid, failed=()) -> str:
    """The study's table: rows word encoder (+ CRF), columns char representation; test F1 (%) mean ± sd over
    seeds with the published numbers beside, and the mean training time."""
    if not study_layout(grid):
        return ""
    rows = layout_cells(variants, grid, failed)
    chars = [c["char"] for c in rows[0]["cells"]] if rows else []
    head = "".join(f"<th>char {html.escape(c)}</th>" for c in chars)
    body = []
    for r in rows:
        label = f"word {r['word'].upper()}" + (" + CRF" if r["inference"] == "crf" else "")
        cells = []
        for c in r["cells"]:
            s, pub = c["summary"], c["published"]
            ours = _ms(s["test_f1"], 100) + f" <span class=\"na\">({s['n_runs']} runs)</span>" if s else \
                '<span class="na">no run</span>'
            if c["n_failed"]:
                ours += f" <span class=\"no\">({c['n_failed']} failed)</span>"
            ref = f"<br><small>{pub[0]:.2f} / {pub[1]:.2f}</small>" if pub else ""
            secs = f"<br><small>{_minutes(s['train_seconds'][0])}</small>" if s and s["train_seconds"][0] else ""
            recipe = f"<br><small class=\"na\">{html.escape(', '.join(c['recipe']))}</small>" if c["recipe"] else ""
            cells.append(f"<td>{ours}{ref}{secs}{recipe}</td>")
        body.append(f"<tr><td class=\"l\">{label}</td>{''.join(cells)}</tr>")
    note = (f"Test entity F1 (%), conlleval, mean ± sd over seeds; below: {PUBLISHED_SOURCES[0]} / "
            f"{PUBLISHED_SOURCES[1]}, the mean training time of a run, and the settings the cell adds to the "
            "study's config (--cell-set), if any.")
    return (f"<p>{html.escape(note)}</p><table><thead><tr><th class=\"l\">model</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def findings_by_variant(variants: dict) -> str:
    """Findings × architectures: each finding's verdict (and share of cases holding) in each variant."""
    names = [n for n, v in variants.items() if v.get("findings")]
    if not names:
        return ""
    table = findings_by_label(variants)
    head = "".join(f"<th title=\"{html.escape(n)}\">{'<br>'.join(html.escape(p) for p in short_label(n).split(' / '))}"
                   "</th>" for n in names)
    body = []
    for label, by_name in table.items():
        cells = []
        for n in names:
            f = by_name.get(n)
            if f is None:
                cells.append('<td class="na">–</td>')
                continue
            share = f" {f['n_holding']}/{f['n_cases']}" if f["verdict"] != "not applicable" else ""
            runs = (f"<br><small class=\"na\">{f['holds_runs']}/{f['applicable_runs']} runs</small>"
                    if f.get("applicable_runs") else "")
            verdict = _SHORT.get(f["verdict"], html.escape(f["verdict"]))
            cells.append(f"<td title=\"{html.escape(f['verdict'])}\"><span class=\"{_CLASS.get(f['verdict'], '')}\">"
                         f"{verdict}</span><small>{share}</small>{runs}</td>")
        fid = next(iter(by_name.values()))["id"]
        body.append(f"<tr><td class=\"l\">{html.escape(label)} {html.escape(fid)}</td>{''.join(cells)}</tr>")
    return ("<p>Each finding's verdict per architecture: holds, contradicted, ≈0 (negligible: within the smallest "
            "effect of interest), ? (inconclusive), untestable or n/a (not applicable), "
            "with the cases holding / tested after Holm–Bonferroni within the architecture's runs; below, in how "
            "many of its runs the finding held on its own (each run's own test: with 3 seeds the verdict across "
            "runs is rarely conclusive, the run count shows the direction).</p>"
            f"<div class=\"nowrap\"><table><thead><tr><th class=\"l\">finding</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def findings_contrasts(variants: dict) -> str:
    """What changes between architectures, in words (``nerve.grid.finding_contrasts``)."""
    items = [f"<li><b>{html.escape(label)}</b> {html.escape(what)}: {html.escape(text)}.</li>"
             for label, what, text in finding_contrasts(variants)]
    return "<p>What changes between architectures:</p><ul>" + "".join(items) + "</ul>" if items else ""
