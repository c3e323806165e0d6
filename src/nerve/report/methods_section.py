"""The report's "Which ranking method?" section: held-out drops in recall per method and tag over runs, a plain-language
verdict per tag and overall, and the methods' agreement and stability figures."""

from __future__ import annotations

import html
from pathlib import Path

from nerve.analysis.judging import two_decimals
from nerve.tags import tag_order

SECTION_K = 10  # the k of the section's tables and verdicts (the largest swept k when smaller)
ABLATE_ORDER = ("mean", "zero")  # mean ablation first: it does not push every token to O


def _cell(r: dict | None) -> str:
    if r is None:
        return "–"
    sd = f" ± {two_decimals(r['own_drop_sd'])}" if r["own_drop_sd"] is not None else ""
    return f"{two_decimals(r['own_drop_mean'])}{sd} [{r['runs_best']}]"



def _drop_table(sel: list[dict], table) -> str:
    tags = list(dict.fromkeys(r["target_tag"] for r in sel))
    tags = [tags[j] for j in tag_order(tags)]
    methods = list(dict.fromkeys(r["method"] for r in sel))
    at = {(r["method"], r["target_tag"]): r for r in sel}
    rows = [[html.escape(m), *[_cell(at.get((m, t))) for t in tags]] for m in methods]
    rnd = [next((r["random_mean_drop"] for r in sel if r["target_tag"] == t and r["random_mean_drop"] is not None),
                None) for t in tags]
    rows.append(["random units (mean)", *[two_decimals(v) for v in rnd]])
    return f'<div class="nowrap">{table(["method", *tags], rows, left=1)}</div>'


def methods_section(variant: str, methods: dict, table, figures, heading=None) -> str:
    """HTML of the section for one study variant.

    Args:
        methods: the study summary's ``methods`` entry: across (``judging.across_runs`` rows), verdicts
            ({ablate: ``judging.method_verdicts``}), k, rank_split, score_split, n_runs, compare_dir.
        table: ``table(header, rows, left=)`` -> HTML; figures: ``figures(paths)`` -> HTML of those figures (each
            with the caption its drawing stored); heading: ``heading(level, title)`` -> HTML of a heading with an
            anchor (default: a plain heading).
    """
    heading = heading or (lambda level, title: f"<h{level}>{html.escape(title)}</h{level}>")
    k, rs, ss, n = methods["k"], methods["rank_split"], methods["score_split"], methods["n_runs"]
    parts = [heading(2, f"Which ranking method? — {variant}"),
             f"<p>Each method ranks the units on <b>{html.escape(rs)}</b>; its top {k} units of a tag are then "
             f"intervened on in the model on <b>{html.escape(ss)}</b> (held-out data) and the tag's recall is "
             f"measured again. A cell is the drop in recall (k = 0 minus after; positive = worse), mean ± sd over "
             f"{n} run{'s' * (n != 1)}, with the number of runs in which that method's drop was the largest in "
             f"brackets. Random units: the mean drop in recall of {k} random units. The drop in token F1 and k = 1, "
             "5, 20 are in methods_across_runs.csv.</p>"]
    compare_dir = Path(methods["compare_dir"])
    for ablate in [a for a in ABLATE_ORDER if a in methods["verdicts"]]:
        how = ("each unit set to its mean on " + rs) if ablate == "mean" else "each unit set to 0"
        sel = [r for r in methods["across"] if r["ablate"] == ablate and r["k"] == k and r["score"] == "accuracy"]
        v = methods["verdicts"][ablate]
        parts += [heading(3, f"{ablate.capitalize()} ablation ({how}) — {variant}"), _drop_table(sel, table),
                  f"<p><b>Verdict.</b> {html.escape(v['overall'])}</p>",
                  "<ul>" + "".join(f"<li>{html.escape(t['text'])}</li>" for t in v["tags"]) + "</ul>",
                  figures([compare_dir / f"methods_drop_{ablate}_mean.png"])]
    shared = [compare_dir / f"{stem}.png" for stem in ("methods_agreement_mean", "methods_stability")]
    if any(p.is_file() for p in shared):
        parts += [heading(3, f"Agreement and stability of the methods — {variant}"), figures(shared)]
    return "".join(parts)
