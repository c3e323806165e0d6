"""The report's "Which ranking method?" section: per intervention and direction (necessity: the top k intervened;
sufficiency: only the top k kept), the methods that are best by the area over k, those the paired comparisons
across runs cannot separate from the best, the random and variance-matched baselines, and a plain-language answer
that claims no more than those comparisons; then the drops per method and tag, and the agreement figures."""

from __future__ import annotations

import html
from pathlib import Path

from nerve.analysis.judging import two_decimals
from nerve.tags import tag_order

SECTION_K = 10  # the k of the section's tables (the largest swept k when smaller)
ABLATE_ORDER = ("mean", "resample", "zero")  # in-distribution interventions first
DIRECTIONS = (("necessity", "remove the top k", "drop"), ("sufficiency", "keep only the top k", "gain"))


def _drop_cell(r: dict | None) -> str:
    if r is None:
        return "–"
    sd = f" ± {two_decimals(r['own_drop_sd'])}" if r["own_drop_sd"] is not None else ""
    return f"{two_decimals(r['own_drop_mean'])}{sd}"


def _drop_table(sel: list[dict], table) -> str:
    tags = list(dict.fromkeys(r["target_tag"] for r in sel))
    tags = [tags[j] for j in tag_order(tags)]
    methods = list(dict.fromkeys(r["method"] for r in sel))
    at = {(r["method"], r["target_tag"]): r for r in sel}
    rows = [[html.escape(m), *[_drop_cell(at.get((m, t))) for t in tags]] for m in methods]
    rnd = [next((r["random_mean_drop"] for r in sel if r["target_tag"] == t and r["random_mean_drop"] is not None),
                None) for t in tags]
    rows.append(["random units (mean)", *[two_decimals(v) for v in rnd]])
    return f'<div class="nowrap">{table(["method", *tags], rows, left=1)}</div>'


def _names(methods: list[str]) -> str:
    return ", ".join(html.escape(m) for m in methods) if methods else "none"


def _best_rows(best: dict, baselines: list[dict], k: int) -> list[list[str]]:
    """One row per intervention: best method (mean area), not separable, worse, random and matched baselines."""
    rows = []
    for ablate in [a for a in ABLATE_ORDER if a in best] + [a for a in best if a not in ABLATE_ORDER]:
        b = best[ablate]
        means = b["means"]
        base = {r["method"]: r for r in baselines if r["ablate"] == ablate and r["k"] == k}
        mine = base.get(b["best"], {})
        rnd = mine.get("random_mean")
        mat = mine.get("matched_mean")
        excess = mine.get("excess_matched")
        ci = (f" [{two_decimals(mine['excess_matched_lo'])}, {two_decimals(mine['excess_matched_hi'])}]"
              if mine.get("excess_matched_lo") is not None else "")
        below = _below(mine)
        rows.append([html.escape(ablate), f"<b>{html.escape(b['best'])}</b> ({two_decimals(means[b['best']])})",
                     _names(b["not_separable"]), _names(b["worse"]), two_decimals(rnd), two_decimals(mat),
                     (two_decimals(excess) + ci) if excess is not None else "–", below])
    return rows


def _below(summary: dict) -> str:
    """How many tag-runs have a random-draw p below the threshold — or, where the draws cannot get there (p's floor
    1/(draws + 1) is not below it), how many sit at that floor, saying so."""
    if not summary.get("tag_runs"):
        return "–"
    floor, below = summary.get("p_floor"), summary.get("p_below")
    if floor is not None and below is not None and floor >= below:
        return f"{summary['tag_runs_at_floor']} of {summary['tag_runs']} at the floor 1/{round(1 / floor)}"
    return f"{summary['tag_runs_p_below']} of {summary['tag_runs']}"


def _answer(best: dict, what: str) -> str:
    """The plain-language answer for one direction: the best method per intervention and whether one method is
    best or not separable from the best under every intervention."""
    if not best:
        return ""
    per = "; ".join(f"under {html.escape(a)}, {html.escape(b['best'])} is best"
                    + (f" and {_names(b['not_separable'])} cannot be told apart from it" if b["not_separable"]
                       else " and every other method is worse by more than the smallest difference of interest")
                    for a, b in best.items())
    everywhere = [m for m in next(iter(best.values()))["means"]
                  if all(m == b["best"] or m in b["not_separable"] for b in best.values())]
    if len(everywhere) == 1:
        tail = f"Only {html.escape(everywhere[0])} is best or not separable from the best under every intervention."
    elif everywhere:
        tail = (f"{_names(everywhere)} are each best or not separable from the best under every intervention; the "
                "comparisons do not single one out.")
    else:
        tail = "No method is best or not separable from the best under every intervention."
    return f"<p><b>Answer ({what}).</b> {per[0].upper() + per[1:]}. {tail}</p>"


def _method_table(methods: dict, k: int, table, heading, variant: str) -> str:
    """Method × intervention: each method's mean area over k (over runs and entity tags) per direction and
    intervention, and its agreement with the other methods' consensus (Fan et al. 2023) at k."""
    best, consensus = methods.get("best", {}), methods.get("consensus", {})
    columns = [(d, a) for d, _, _ in DIRECTIONS for a in best.get(d, {})]
    if not columns:
        return ""
    names = list(dict.fromkeys(m for d, a in columns for m in best[d][a]["means"]))
    header = ["method", *[f"{a} ({'drop' if d == 'necessity' else 'gain'})" for d, a in columns],
              f"top-{k} overlap with the others' consensus"]
    rows = []
    for m in names:
        cells = []
        for d, a in columns:
            b = best[d][a]
            v = b["means"].get(m)
            text = two_decimals(v)
            cells.append(f"<b>{text}</b>" if m == b["best"] else text)
        c = consensus.get(m)
        rows.append([html.escape(m), *cells, two_decimals(c["overlap"]) if c else "–"])
    return (heading(3, f"Method × intervention: mean area over k — {variant}")
            + f'<div class="nowrap">{table(header, rows, left=1)}</div>'
            + "<p>Bold: the best under that intervention and direction. Consensus: the share of a method's top "
            f"{k} units among the top {k} of the Borda vote of the other methods, mean over entity tags and runs."
            "</p>")


def methods_section(variant: str, methods: dict, table, figures, heading=None) -> str:
    """HTML of the section for one study variant.

    Args:
        methods: the study summary's ``methods`` entry (``method_stage.compare_methods``): across
            (``judging.across_runs`` rows), best ({"necessity" / "sufficiency": {ablate: ``paired.best_methods``}}),
            baselines ({direction: ``draws.baseline_summary`` rows}), k, rank_split, score_split, n_runs,
            compare_dir.
        table: ``table(header, rows, left=)`` -> HTML; figures: ``figures(paths)`` -> HTML of those figures (each
            with the caption its drawing stored); heading: ``heading(level, title)`` -> HTML of a heading with an
            anchor (default: a plain heading).
    """
    heading = heading or (lambda level, title: f"<h{level}>{html.escape(title)}</h{level}>")
    k, rs, ss, n = methods["k"], methods["rank_split"], methods["score_split"], methods["n_runs"]
    parts = [heading(2, f"Which ranking method? — {variant}"),
             f"<p>Each method ranks the units on <b>{html.escape(rs)}</b>; its top k units of a tag are then "
             f"intervened on in the model on <b>{html.escape(ss)}</b> (held-out data): <i>zero</i> sets a unit to "
             f"0, <i>mean</i> to its mean on {html.escape(rs)}, <i>resample</i> to its value at a random other "
             f"token (keeping its distribution). <i>Necessity</i> removes the top k; <i>sufficiency</i> keeps only "
             f"the top k and intervenes on every other unit. A method's score is the area over k of its tag's drop "
             f"in recall (necessity) or gain (sufficiency), averaged over the entity tags; two methods are compared "
             f"paired by run over {n} run{'s' * (n != 1)} (paired t, Holm over the table's comparisons, smallest "
             f"difference of interest 0.02). \"Not separable\": not shown worse than the best. Random and matched "
             f"units: the mean drop (or gain) at k = {k} of random unit sets and of sets matched to the best "
             f"method's top {k} by variance decile; the excess over the matched sets has a 95 % t interval over "
             f"runs (uncorrected). The last column counts the tag-runs whose random-draw p is below 0.001; where "
             f"the draws cannot give so small a p (fewer than 999 of them), it counts those at p's floor, "
             f"1/(draws + 1): no random draw reached the method's drop. Comparisons per tag are in "
             f"methods_paired.csv.</p>"]
    for direction, how, what in DIRECTIONS:
        best = methods.get("best", {}).get(direction)
        if not best:
            continue
        baselines = methods.get("baselines", {}).get(direction, [])
        header = ["intervention", "best (mean area)", "not separable from the best", "worse than the best",
                  f"random units ({what} at k = {k})", f"matched units ({what} at k = {k})",
                  "best − matched [95 %]", "tag-runs with random-draw p < 0.001"]
        parts += [heading(3, f"{direction.capitalize()}: {how} — {variant}"),
                  f'<div class="nowrap">{table(header, _best_rows(best, baselines, k), left=1)}</div>',
                  _answer(best, direction)]
    parts.append(_method_table(methods, k, table, heading, variant))
    parts.append(heading(3, f"Drop in recall per method and tag at k = {k} — {variant}"))
    compare_dir = Path(methods["compare_dir"])
    across = methods["across"]
    ablates = list(dict.fromkeys(r["ablate"] for r in across))
    for ablate in [a for a in ABLATE_ORDER if a in ablates] + [a for a in ablates if a not in ABLATE_ORDER]:
        sel = [r for r in across if r["ablate"] == ablate and r["k"] == k and r["score"] == "accuracy"]
        parts += [f"<p><b>{html.escape(ablate.capitalize())} intervention</b>, top {k} removed: mean ± sd over "
                  f"runs of the drop (k = 0 minus after; positive = worse).</p>", _drop_table(sel, table),
                  figures([compare_dir / f"methods_drop_{ablate}_mean.png"])]
    shared = [compare_dir / f"{stem}.png" for stem in ("methods_agreement_mean", "methods_stability")]
    if any(p.is_file() for p in shared):
        parts += [heading(3, f"Agreement and stability of the methods — {variant}"), figures(shared)]
    return "".join(parts)
