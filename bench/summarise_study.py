"""Summarise a finished `nerve study` folder for docs/RESULTS.md: F1 per run, findings (with per-type cases),
and the most tag-specific unit of each tag in the first run.

Run:  python bench/summarise_study.py studies/xin2019_wnut17
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np


def specific_units(analysis: Path, top: int = 1) -> list[tuple[str, str, float, float]]:
    """(tag, unit, sensitivity, specificity) where specificity = s[i, j] - mean over other tags of s[i, :]."""
    rows = list(csv.reader((analysis / "sensitivity.csv").open()))
    tags, names = rows[0][1:], [r[0] for r in rows[1:]]
    s = np.array([[float(x) if x not in ("", "nan") else np.nan for x in r[1:]] for r in rows[1:]])
    out = []
    for j, tag in enumerate(tags):
        if np.all(np.isnan(s[:, j])):
            continue
        others = np.nanmean(np.delete(s, j, axis=1), axis=1)
        spec = s[:, j] - others
        i = int(np.nanargmax(spec))
        out.append((tag, names[i], float(s[i, j]), float(spec[i])))
    return out


def _effect(cl: dict) -> str:
    e = cl["effect"]
    if e["mean"] is None:
        return "–"
    lo, hi = e["ci"]
    d = 2 if abs(e["mean"]) >= 0.01 else 4
    return f"{cl['short']} {e['mean']:+.{d}f}" + (f" [{lo:+.{d}f}, {hi:+.{d}f}]" if lo is not None else "")


def findings_markdown(findings: list[dict]) -> str:
    """The findings as a Markdown table: verdict, effect with its interval over runs, Holm p, cases holding."""
    lines = ["| # | finding | verdict | effect, mean [95 % interval] | p (Holm) | cases holding |",
             "|---|---|---|---|---|---|"]
    for f in findings:
        label = f"{f['number']}" + (f" ({f['ablate']})" if f.get("ablate") else "")
        applicable = f["verdict"] != "not applicable"
        effect = "; ".join(_effect(cl) for cl in f["clauses"]) if applicable else "–"
        p = "–" if f["p"] is None else (f"{f['p']:.2g}" if f["p"] >= 0.001 else f"{f['p']:.1e}")
        share = f"{f['n_holding']} / {f['n_cases']}" if applicable else "–"
        lines.append(f"| {label} | {f['id']} | {f['verdict']} | {effect} | {p} | {share} |")
    return "\n".join(lines) + ("\n\n" + findings[0]["method"] if findings else "")


def main() -> None:
    study = Path(sys.argv[1])
    summary = json.loads((study / "study.json").read_text())
    for name, v in summary["variants"].items():
        f1 = [r["test_f1"] for r in v["runs"]]
        print(f"## {study.name} ({name}): test F1 " + ", ".join(f"{x:.4f}" for x in f1)
              + f"; mean {statistics.mean(f1):.4f}" + (f" ± {statistics.stdev(f1):.4f}" if len(f1) > 1 else ""))
        print("dev F1 " + ", ".join(f"{r['dev_f1']:.4f}" for r in v["runs"]))
        print(findings_markdown(v["findings"]))
        first = Path(v["runs"][0]["run_dir"]) / "analysis"
        print("most tag-specific unit per tag (run " + first.parent.name + "): " + "; ".join(
            f"{t}: unit {u} (s={s:.3f}, +{d:.3f} over other tags)" for t, u, s, d in specific_units(first)))


if __name__ == "__main__":
    main()
