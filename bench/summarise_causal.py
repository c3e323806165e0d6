"""The causal benchmark of a study as Markdown, from its study.json (issue 31): per direction and intervention the
best method by the area over k and those the paired comparisons cannot separate from it; the method ×
intervention table of mean areas with each method's agreement with the others' consensus; the random and
variance-matched baselines at k = 10; the overall paired comparisons.

Run:  python bench/summarise_causal.py STUDY_DIR [--variant base]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:+.{digits}f}".replace("+-", "-") if isinstance(x, float) else str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--variant", default=None)
    args = ap.parse_args()
    summary = json.loads((Path(args.study) / "study.json").read_text(encoding="utf-8"))
    variants = summary["variants"]
    name = args.variant or next(iter(variants))
    m = variants[name]["methods"]
    best, base, consensus = m.get("best", {}), m.get("baselines", {}), m.get("consensus", {})
    print(f"variant {name}: {m['n_runs']} runs, ranked on {m['rank_split']}, scored on {m['score_split']}, "
          f"k = {m['k']}")
    print("\nBest by the mean area over k (paired t over runs, Holm over the table's overall comparisons, δ = 0.02)\n")
    print("| direction | intervention | best (mean area) | not separable from the best | worse than the best |")
    print("|---|---|---|---|---|")
    for d, per in best.items():
        for a, b in per.items():
            print(f"| {d} | {a} | **{b['best']}** ({b['means'][b['best']]:.3f}) | "
                  f"{', '.join(b['not_separable']) or 'none'} | {', '.join(b['worse']) or 'none'} |")
    columns = [(d, a) for d in best for a in best[d]]
    methods = list(dict.fromkeys(x for d, a in columns for x in best[d][a]["means"]))
    print("\nMethod × intervention: mean area over k (necessity: drop; sufficiency: gain), mean over entity tags and "
          f"runs; consensus: top-{m['k']} overlap with the other methods' Borda vote\n")
    print("| method | " + " | ".join(f"{a} ({d[:4]}.)" for d, a in columns) + " | consensus |")
    print("|---|" + "---|" * (len(columns) + 1))
    for x in methods:
        cells = []
        for d, a in columns:
            v = best[d][a]["means"].get(x)
            cells.append("–" if v is None else (f"**{v:.3f}**" if x == best[d][a]["best"] else f"{v:.3f}"))
        c = consensus.get(x)
        print(f"| {x} | " + " | ".join(cells) + f" | {c['overlap']:.2f} |" if c else f"| {x} | " + " | ".join(cells)
              + " | – |")
    for d, rows in base.items():
        print(f"\nBaselines at k = {m['k']} ({d}; mean over runs of the mean over entity tags; excess over the matched "
              "sets with its 95 % t interval over runs, uncorrected; tag-runs with random-draw p < 0.001)\n")
        print("| intervention | method | own | random | matched | own − matched [95 %] | p < 0.001 |")
        print("|---|---|---|---|---|---|---|")
        for r in sorted((r for r in rows if r["k"] == m["k"]), key=lambda r: (r["ablate"], -(r["own_mean"] or 0))):
            ci = (f" [{r['excess_matched_lo']:+.3f}, {r['excess_matched_hi']:+.3f}]"
                  if r["excess_matched_lo"] is not None else "")
            print(f"| {r['ablate']} | {r['method']} | {fmt(r['own_mean'])} | {fmt(r['random_mean'])} | "
                  f"{fmt(r['matched_mean'])} | {fmt(r['excess_matched'])}{ci} | "
                  f"{r['tag_runs_p_below']} of {r['tag_runs']} |")


if __name__ == "__main__":
    main()
