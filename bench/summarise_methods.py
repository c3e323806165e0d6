"""Print the ranking-method tables of a comparison folder (`nerve compare` or a study's compare/VARIANT) as Markdown.

Run:  python bench/summarise_methods.py studies/xin2019/compare/base [--k 10] [--score accuracy]

Prints, per ablation value: the methods x tags own drop at k (mean ± sd over runs, [runs where the method hurt
most]), the random units' mean drop, the verdict lines; then the agreement matrix (top-k units shared by two
methods, mean over tags and runs) and each method's stability (matched top-k overlap between runs, per tag).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from nerve.analysis.agreement import pair_matrix
from nerve.analysis.judging import method_verdicts
from nerve.analysis.judging import two_decimals as _num
from nerve.tags import tag_order


def _read(path: Path) -> list[dict]:
    out = []
    for r in csv.DictReader(path.open(encoding="utf-8")):
        row = {}
        for key, v in r.items():
            if v == "":
                row[key] = None
            elif key in ("k", "n_runs", "n_draws", "runs_best", "n_pairs"):
                row[key] = int(v)
            else:
                try:
                    row[key] = float(v)
                except ValueError:
                    row[key] = v
        out.append(row)
    return out


def _markdown(header: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table: the header, its rule, then one line per row."""
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---|" * (len(header) - 1))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--score", default="accuracy", choices=["accuracy", "f1"])
    args = ap.parse_args()
    d, k = Path(args.folder), args.k
    across = _read(d / "methods_across_runs.csv")
    for ablate in ("mean", "zero"):
        sel = [r for r in across if r["ablate"] == ablate and r["k"] == k and r["score"] == args.score]
        if not sel:
            continue
        tags = list(dict.fromkeys(r["target_tag"] for r in sel))
        tags = [tags[j] for j in tag_order(tags)]
        methods = list(dict.fromkeys(r["method"] for r in sel))
        at = {(r["method"], r["target_tag"]): r for r in sel}
        n = max(r["n_runs"] for r in sel)
        print(f"\n{ablate} ablation, k = {k}, score {args.score}: ranked on {sel[0]['rank_split']}, scored on "
              f"{sel[0]['score_split']}; own drop mean ± sd over {n} runs [runs where the method hurt most]\n")
        rows = []
        for m in methods:
            cells = []
            for t in tags:
                r = at.get((m, t))
                cells.append("–" if r is None else f"{_num(r['own_drop_mean'])} ± {_num(r['own_drop_sd'])} "
                             f"[{r['runs_best']}]")
            rows.append([m, *cells])
        rnd = [next((r["random_mean_drop"] for r in sel if r["target_tag"] == t), None) for t in tags]
        _markdown(["method", *tags], rows + [["random units (mean)", *(_num(v) for v in rnd)]])
        ps = {m: ", ".join(_num(at[(m, t)]["random_p_median"]) if (m, t) in at else "–" for t in tags)
              for m in methods}
        print("\nmedian random-draw p per tag (same order):")
        for m, p in ps.items():
            print(f"- {m}: {p}")
        v = method_verdicts(across, ablate, k, args.score)
        print(f"\nverdict: {v['overall']}")
        for t in v["tags"]:
            print(f"- {t['text']}")
    agreement = d / "methods_agreement_across_runs.csv"
    if agreement.is_file():
        rows = [{**r, "shared": r["shared_mean"]} for r in _read(agreement)]
        methods = list(dict.fromkeys([r["method_a"] for r in rows] + [r["method_b"] for r in rows]))
        M = pair_matrix(rows, methods, k)
        chance = next(r["chance"] for r in rows if r["k"] == k)
        print(f"\nagreement: top-{k} units shared by two methods, mean over tags and runs (chance {chance:.1f})\n")
        _markdown(["", *methods], [[m, *(f"{x:.1f}" for x in M[i])] for i, m in enumerate(methods)])
    stability = d / "methods_stability.csv"
    if stability.is_file():
        rows = [r for r in _read(stability) if r["k"] == k]
        tags = list(dict.fromkeys(r["tag"] for r in rows))
        tags = [tags[j] for j in tag_order(tags)]
        methods = list(dict.fromkeys(r["method"] for r in rows))
        at = {(r["method"], r["tag"]): r for r in rows}
        pairs = max(r["n_pairs"] for r in rows)
        print(f"\nstability: top-{k} units shared by two runs after unit matching, mean over {pairs} run pairs "
              f"(chance {rows[0]['chance']:.1f})\n")
        rows = []
        for m in methods:
            vals = [at[(m, t)]["shared_mean"] for t in tags]
            mean = np.mean([v for v in vals if v is not None]) if any(v is not None for v in vals) else None
            rows.append([m, *("–" if v is None else f"{v:.1f}" for v in vals), _num(mean)])
        _markdown(["method", *tags, "mean"], rows)


if __name__ == "__main__":
    main()
