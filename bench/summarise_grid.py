"""Summarise a finished grid study for docs/RESULTS.md: the study's 4×3 table (test F1 mean ± sd over seeds, with
the study's and NCRF++'s numbers and the training time per cell) and the findings × architecture table.

Run:  python bench/summarise_grid.py studies/grid   (while the grid runs: the cells of the runs finished so far)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nerve.grid import CHAR, INFERENCE, WORD, finding_contrasts, findings_by_label, layout_cells, short_label

SHORT = {"holds": "holds", "contradicted": "CONTRADICTED", "negligible": "≈0", "inconclusive": "?",
         "cannot be tested": "untestable", "not applicable": "n/a"}


def layout_markdown(variants: dict, grid: list, failed: list = ()) -> str:
    rows = layout_cells(variants, grid, failed)
    chars = [c["char"] for c in rows[0]["cells"]]
    lines = ["| model | " + " | ".join(f"char {c}" for c in chars) + " |", "|---" * (len(chars) + 1) + "|"]
    for r in rows:
        label = f"word {r['word'].upper()}" + (" + CRF" if r["inference"] == "crf" else "")
        cells = []
        for c in r["cells"]:
            s, pub = c["summary"], c["published"]
            lost = f" ({c['n_failed']} failed)" if c["n_failed"] else ""
            if s is None or s["test_f1"][0] is None:
                cells.append("no run" + lost)
                continue
            mean, sd, n = s["test_f1"]
            ours = f"**{100 * mean:.2f}**" + (f" ± {100 * sd:.2f}" if sd is not None else "") + f" ({n})"
            ref = f" · {pub[0]:.2f} / {pub[1]:.2f}" if pub else ""
            recipe = f" · {', '.join(c['recipe'])}" if c["recipe"] else ""
            cells.append(f"{ours}{lost}{ref} · {s['train_seconds'][0] / 60:.0f} min{recipe}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_markdown(variants: dict) -> str:
    names = list(variants)
    lines = ["| finding | " + " | ".join(short_label(n) for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, by_name in findings_by_label(variants).items():
        cells = []
        for n in names:
            f = by_name.get(n)
            cells.append("–" if f is None else SHORT.get(f["verdict"], f["verdict"])
                         + (f" {f['n_holding']}/{f['n_cases']}" if f["verdict"] != "not applicable" else "")
                         + (f" ({f['holds_runs']}/{f['applicable_runs']} runs)" if f.get("applicable_runs") else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contrasts_markdown(variants: dict) -> str:
    """Per finding, where it holds and where it fails (``nerve.grid.finding_contrasts``, as the report words it) —
    what the paragraph on what changes between architectures is written from."""
    return "\n".join(f"- finding {label}: {text}" for label, _, text in finding_contrasts(variants))


def finished_runs(study: Path, plan: dict) -> dict:
    """The variants of a grid still running: each variant's finished runs (complete with the planned
    fingerprint) as ``study.run_row`` rows, and its recipe; no findings."""
    from nerve.folder import completed
    from nerve.study import Job, run_row

    variants: dict = {}
    for spec in plan["jobs"]:
        job = Job.from_dict(spec)
        v = variants.setdefault(job.variant, {"runs": [], "recipe": job.recipe, "findings": []})
        if completed(job.run_dir, job.fingerprint):
            v["runs"].append(run_row(job))
    return variants


def main() -> None:
    study = Path(sys.argv[1])
    plan = json.loads((study / "plan.json").read_text())
    grid = [tuple(g) for g in plan["grid"]]
    summary, failed = study / "study.json", []
    if summary.is_file() and summary.stat().st_mtime >= (study / "plan.json").stat().st_mtime:
        done = json.loads(summary.read_text())
        variants, failed = done["variants"], done.get("failed", [])
    else:  # not finished, or re-run since (plan.json is newer than study.json)
        variants = finished_runs(study, plan)
        print(f"(the study has not finished: {sum(len(v['runs']) for v in variants.values())} of "
              f"{len(plan['jobs'])} runs are done, and the findings come when it has)\n")
    if sorted(k for k, _ in grid) == sorted((CHAR, WORD, INFERENCE)):
        print("Test entity F1 (%), mean ± sd (runs) · the study's / NCRF++'s · mean training time of a run"
              " · the cell's --cell-set settings\n")
        print(layout_markdown(variants, grid, failed) + "\n")
    for f in failed:
        print(f"- failed: {f['variant']} seed {f['seed']}: {f['error']}")
    if any(v["findings"] for v in variants.values()):
        print(findings_markdown(variants) + "\n\n" + contrasts_markdown(variants))


if __name__ == "__main__":
    main()
