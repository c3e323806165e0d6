"""Markdown tables of fine-tuned Hugging Face runs (issue 34): each run's best epoch, dev and test F1 and training
time; the classifier-input methods over runs (from their analysis folders); and a depth folder's summary.

Run:  python bench/summarise_hf.py RUN... [--depth DEPTH_DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path


def runs_table(runs: list[str]) -> None:
    print("| run | best epoch | dev F1 | test F1 | training (s) | s per epoch |")
    print("|---|---|---|---|---|---|")
    f1 = []
    for r in runs:
        m = json.loads((Path(r) / "metrics.json").read_text())
        epochs = m["epochs"]
        f1.append(m["test"]["f1"])
        print(f"| {Path(r).name} | {m['best_epoch']} | {m['dev']['f1']:.4f} | {m['test']['f1']:.4f} | "
              f"{m['train_seconds']:.0f} | {m['train_seconds'] / len(epochs):.0f} |")
    if len(f1) > 1:
        print(f"\ntest F1 mean {statistics.mean(f1):.4f} ± {statistics.stdev(f1):.4f} (sd over {len(f1)} runs)")


def methods_table(runs: list[str], k: str = "10") -> None:
    per = defaultdict(list)
    for r in runs:
        path = Path(r) / "analysis" / "methods_summary.csv"
        if not path.is_file():
            continue
        by_run = defaultdict(list)
        for row in csv.DictReader(path.open()):
            if row["score"] == "accuracy" and row["k"] == k:
                by_run[(row["ablate"], row["method"])].append(
                    (float(row["own_drop"]), float(row["random_mean_drop"]), float(row["selectivity"])))
        for key, vals in by_run.items():
            per[key].append(tuple(statistics.mean(v[i] for v in vals) for i in range(3)))
    if not per:
        return
    print(f"\n| intervention | method | own drop at k = {k} (mean over tags, then runs; ± sd over runs) | random | "
          "selectivity |")
    print("|---|---|---|---|---|")
    for (ablate, method), vals in sorted(per.items()):
        own = [v[0] for v in vals]
        sd = statistics.stdev(own) if len(own) > 1 else float("nan")
        print(f"| {ablate} | {method} | {statistics.mean(own):.4f} ± {sd:.4f} | "
              f"{statistics.mean(v[1] for v in vals):.4f} | {statistics.mean(v[2] for v in vals):.4f} |")


def depth_table(folder: str) -> None:
    rows = list(csv.DictReader((Path(folder) / "depth_summary.csv").open()))
    print("\n| site | method | own drop | random drop | excess over random [95 % CI] | p (t, df = runs − 1) | "
          "Holm p | cases p ≤ 0.05 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        f = {k: float(v) for k, v in r.items() if k not in ("site", "method")}
        print(f"| {r['site']} | {r['method']} | {f['own_drop']:.4f} | {f['random_drop']:.4f} | "
              f"{f['excess_mean']:.4f} [{f['ci_low']:.4f}, {f['ci_high']:.4f}] | {f['p']:.3g} | {f['p_holm']:.3g} | "
              f"{f['share_p05']:.2f} |")


def findings_table(folder: str) -> None:
    """Findings × sites: each cell the verdict over the runs and the first clause's effect."""
    path = Path(folder) / "depth_findings.csv"
    if not path.is_file():
        return
    rows = list(csv.DictReader(path.open()))
    sites = [s for _, s in sorted({(int(r["depth"]), r["site"]) for r in rows})]
    short = {"holds": "**holds**", "holds for most": "most", "contradicted": "**contra**", "negligible": "≈0",
             "inconclusive": "?", "cannot be tested": "n/t", "not applicable": "n/a"}
    cell = {((r["finding"], r["ablate"], r["id"]), r["site"]): r for r in rows}
    keys = list(dict.fromkeys((r["finding"], r["ablate"], r["id"]) for r in rows))
    alpha = float(rows[0]["alpha"]) if rows else float("nan")
    print(f"\nFindings × sites (verdict over runs, effect; Holm within a site at alpha = {alpha:.4g}):\n")
    print("| finding | " + " | ".join(sites) + " |")
    print("|---|" + "---|" * len(sites))
    for key in keys:
        label = f"{key[0]}{f' ({key[1]})' if key[1] else ''} {key[2]}"
        cells = []
        for s in sites:
            r = cell.get((key, s))
            effect = f" {float(r['effect']):+.2f}" if r and r["effect"] not in ("", None) else ""
            cells.append(f"{short.get(r['verdict'], r['verdict'])}{effect}" if r else "–")
        print(f"| {label} | " + " | ".join(cells) + " |")
    within = defaultdict(int)
    for r in rows:
        within[r["within_verdict"]] += 1
    print("\nwithin-run verdicts (these trained models only): " + ", ".join(f"{k} {v}" for k, v in within.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--depth", default=None)
    args = ap.parse_args()
    runs_table(args.runs)
    methods_table(args.runs)
    if args.depth:
        depth_table(args.depth)
        findings_table(args.depth)


if __name__ == "__main__":
    main()
