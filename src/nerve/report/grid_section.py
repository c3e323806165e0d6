"""The report's grid section: every variant over its seeds (NaN-aware, with counts), the study's char × word ×
inference layout beside the published numbers, and the findings × architecture table."""

from __future__ import annotations

import html

from nerve.grid import (
    PUBLISHED_SOURCES,
    cell_summary,
    contrast_tests,
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


def _contrast_row(c) -> str:
    """One tested contrast as a table row: finding (clause, statistic), factor (and what it is confounded with),
    levels, effect [interval at its Holm level], test, p (Holm), verdict."""
    from nerve.analysis.meta import p_text

    finding = html.escape(f"{c.label} {c.id}") + f"<br><small class=\"na\">{html.escape(c.statistic)}" + (
        f", clause {c.clause}" if c.clause > 1 else "") + "</small>"
    factor = html.escape(c.factor) + (f"<br><small class=\"na\">{html.escape(c.note)}</small>" if c.note else "")
    levels = f"{html.escape(c.high)} − {html.escape(c.low)}"
    if c.reason:
        effect, test = f'<span class="na">{html.escape(c.reason)}</span>', "–"
    else:
        effect = (f"{c.effect:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]"
                  f"<br><small class=\"na\">{c.level:.2%} (Holm level), δ = {c.sesoi:g}</small>")
        test = html.escape(c.test)
    verdict = f"<span class=\"{_CLASS.get(c.verdict, '')}\">{html.escape(c.verdict)}</span>"
    cells = [finding, factor, levels, effect, test, p_text(c.p_holm), verdict]
    return "<tr>" + "".join(f"<td class=\"l\">{x}</td>" if i < 3 else f"<td>{x}</td>" for i, x in enumerate(cells)) + \
        "</tr>"


def contrasts_table(contrasts: list) -> str:
    """The tested architecture contrasts (``nerve.grid.contrast_tests``) as a table, with how they were tested."""
    if not contrasts:
        return ""
    m = contrasts[0].m
    note = ("Each finding's effect per run (the mean of its cases' statistics in the run), averaged over a cell's "
            "seeds, regressed on the grid's factors (main effects; the recipe too when it varies) by OLS over the "
            "cells: each row is the difference between two levels of a factor (as the levels column says, adjusted "
            "for the other factors) with its t test on the residual degrees of freedom and its interval at its "
            f"Holm level; p (Holm) over all {m} contrasts of this study. Claim: the factor changes the effect by at "
            "least δ, the finding's smallest effect of interest (holds: the interval lies outside ±δ; negligible: "
            "inside ±δ; else inconclusive). A factor that cannot be separated from another is tested jointly with "
            "it. Population: architectures of this grid, trained with other seeds.")
    left = ' class="l"'
    head = "".join(f"<th{left if i < 3 else ''}>{h}</th>" for i, h in enumerate(
        ["finding", "factor", "levels", "effect [interval]", "test", "p (Holm)", "verdict"]))
    return (f"<p>{html.escape(note)}</p><div class=\"nowrap\"><table><thead><tr>{head}</tr></thead><tbody>"
            + "".join(_contrast_row(c) for c in contrasts) + "</tbody></table></div>")


def findings_contrasts(variants: dict) -> str:
    """What changes between architectures: the tested contrasts (``contrasts_table``), then per finding the run
    counts in words (``nerve.grid.finding_contrasts``), a description."""
    tests = contrast_tests(variants)
    counts = [(label, what, text.split("run counts (a description): ")[-1])
              for label, what, text in finding_contrasts(variants, tests)]
    items = [f"<li><b>{html.escape(label)}</b> {html.escape(what)}: {html.escape(text)}.</li>"
             for label, what, text in counts]
    table = contrasts_table(tests)
    words = ("<p>Where each finding holds, by architecture (counts of the cells' verdicts and runs: a description, "
             "not a test of a difference):</p><ul>" + "".join(items) + "</ul>") if items else ""
    return (("<p>What changes between architectures, tested:</p>" + table) if table else "") + words
