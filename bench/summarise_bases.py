"""Markdown tables of a study's "Neurons or directions?" comparison (compare/VARIANT/bases_across_runs.csv and
bases_paired.csv) for docs/RESULTS.md: per basis the mean over tags of each measure (each tag's mean over runs),
then per basis and measure the count of each verdict against the neurons (paired over runs, Holm, δ).

Run:  python bench/summarise_bases.py STUDY_DIR [--variant base] [--method ig_mean] [--ablate mean]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from nerve.analysis.bases_compare import delta_text, verdict_counts

MEASURES = ("units_to_halve", "necessity_auc", "sufficiency_auc", "selectivity", "top_share", "monosemanticity",
            "reconstruction_f1_drop")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--variant", default="base")
    ap.add_argument("--method", default="ig_mean")
    ap.add_argument("--ablate", default="mean")
    args = ap.parse_args()
    d = Path(args.study) / "compare" / args.variant
    across = [r for r in csv.DictReader(open(d / "bases_across_runs.csv"))
              if r["method"] == args.method and r["ablate"] == args.ablate]
    paired = [r for r in csv.DictReader(open(d / "bases_paired.csv"))
              if r["method"] == args.method and r["ablate"] == args.ablate]
    bases = list(dict.fromkeys(r["basis"] for r in across))
    print(f"{args.method}, {args.ablate}; each cell: the mean over tags of the tag's mean over "
          f"{max(int(r['n_runs']) for r in across)} runs\n")
    print("| basis | " + " | ".join(MEASURES) + " |")
    print("|---|" + "---|" * len(MEASURES))
    for b in bases:
        cells = []
        for m in MEASURES:
            v = np.array([float(r["mean"]) for r in across if r["basis"] == b and r["metric"] == m])
            v = v[np.isfinite(v)]
            cells.append(f"{v.mean():.2f}" if v.size else "–")
        print(f"| {b} | " + " | ".join(cells) + " |")
    print(f"\npaired against the neurons (paired t over runs, Holm over the tags, δ = {delta_text()}): higher by more "
          "than δ ↑ / lower ↓ / negligible ≈ / inconclusive or cannot be tested ?\n")
    print("| basis | " + " | ".join(MEASURES[:5]) + " |")
    print("|---|" + "---|" * 5)
    for b in bases:
        if b == "neurons":
            continue
        cells = []
        for m in MEASURES[:5]:
            fam = [r for r in paired if r["basis"] == b and r["metric"] == m]
            hi, lo, same, rest = verdict_counts(fam)
            cells.append(f"{hi} ↑ / {lo} ↓ / {same} ≈ / {rest} ?")
        print(f"| {b} | " + " | ".join(cells) + " |")
    stability_table(d, bases, args.method)
    leace_table(Path(args.study), args.variant)


def stability_table(d: Path, bases: list[str], method: str) -> None:
    """Per basis, the method's top-k units shared by two runs after matching (methods_stability.csv), mean over tags,
    at the largest k <= 10, with the chance k²/n."""
    print(f"\nstability of {method}'s top units across runs (matched units shared by two runs, mean over tags)\n")
    print("| basis | k | shared | chance |\n|---|---|---|---|")
    for b in bases:
        path = d / "methods_stability.csv" if b == "neurons" else d / "bases" / b / "methods_stability.csv"
        if not path.is_file():
            continue
        rows = [r for r in csv.DictReader(open(path)) if r["method"] == method and r["shared_mean"] not in ("", "nan")]
        k = max((int(r["k"]) for r in rows if int(r["k"]) <= 10), default=None)
        sel = [r for r in rows if k is not None and int(r["k"]) == k]
        if sel:
            print(f"| {b} | {k} | {np.mean([float(r['shared_mean']) for r in sel]):.2f} | "
                  f"{float(sel[0]['chance']):.2f} |")


def leace_table(study: Path, variant: str = "base") -> None:
    """LEACE per tag over the runs: mean own recall drop and selectivity (leace_summary.csv of each run)."""
    rows = [r for f in sorted((study / "runs" / variant).glob("seed*/analysis/leace_summary.csv"))
            for r in csv.DictReader(open(f)) if r["score"] == "accuracy"]
    tags = list(dict.fromkeys(r["erased_tag"] for r in rows))
    runs = len(list((study / "runs" / variant).glob("seed*/analysis/leace_summary.csv")))
    print(f"\nLEACE (rank-1 erasure of each tag, {runs} runs): mean own "
          "recall drop / selectivity\n")
    print("| " + " | ".join(tags) + " |\n|" + "---|" * len(tags))
    print("| " + " | ".join(f"{np.mean([float(r['own_drop']) for r in rows if r['erased_tag'] == t]):.2f} / "
                            f"{np.mean([float(r['selectivity']) for r in rows if r['erased_tag'] == t]):.2f}"
                            for t in tags) + " |")


if __name__ == "__main__":
    main()
