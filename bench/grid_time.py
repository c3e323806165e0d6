"""How long a study's runs took, and the wall time they need on W workers: per run, the training and per-epoch
evaluation seconds from its ``epochs.jsonl`` and the analysis seconds from ``analysis/analysis.json``; then the
sum (core time) and a replay of the study's scheduler (jobs in plan order, each to the first free worker).

A study interrupted and resumed (a session ending, a restart) has no single wall-clock figure; this one adds up what
each run measured of itself, so it is the wall time of one uninterrupted study whose runs take as long as these did
(runs measured next to other work make it an upper figure).

Run:  python bench/grid_time.py studies/grid [--workers 2]
"""

from __future__ import annotations

import argparse
import heapq
import json
from pathlib import Path

from machine import cpu_name


def run_seconds(run_dir: Path) -> tuple[float, float, float] | None:
    """(training, evaluation, analysis) seconds of a finished run, or None while it is not finished."""
    epochs, analysis = run_dir / "epochs.jsonl", run_dir / "analysis" / "analysis.json"
    if not (run_dir / "complete.json").is_file() or not analysis.is_file():
        return None
    rows = [json.loads(line) for line in epochs.read_text().splitlines() if line.strip()]
    train = sum(r["train_seconds"] for r in rows)
    evaluate = sum(r.get("eval_seconds", 0.0) for r in rows)
    return train, evaluate, float(json.loads(analysis.read_text())["seconds"])


def replay(durations: list[float], workers: int) -> float:
    """Wall seconds of running ``durations`` in order on ``workers`` workers, each job to the first free one."""
    free = [0.0] * workers
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        end = max(end, start + d)
        heapq.heappush(free, start + d)
    return end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    plan = json.loads((Path(args.study) / "plan.json").read_text())
    print(f"machine: {cpu_name()}; study {args.study}: {len(plan['jobs'])} runs planned")
    cells: dict[str, list] = {}
    durations, missing = [], []
    for job in plan["jobs"]:
        s = run_seconds(Path(job["run_dir"]))
        if s is None:
            missing.append(f"{job['variant']}/seed{job['seed']}")
            continue
        cells.setdefault(job["variant"], []).append(s)
        durations.append(sum(s))
    print("| cell | runs | training min | evaluation min | analysis min | a run, min |\n|---|---|---|---|---|---|")
    for variant, runs in cells.items():
        t, e, a = (sum(r[i] for r in runs) / 60 for i in range(3))
        print(f"| {variant} | {len(runs)} | {t:.1f} | {e:.1f} | {a:.1f} | {(t + e + a) / len(runs):.1f} |")
    total = sum(durations)
    print(f"\ncore time of {len(durations)} finished runs: {total / 60:.0f} min ({total / 3600:.2f} h)")
    wall = replay(durations, args.workers)
    print(f"wall on {args.workers} workers, plan order: {wall / 60:.0f} min ({wall / 3600:.2f} h)")
    if missing:
        print(f"not finished ({len(missing)}): {', '.join(missing)}")


if __name__ == "__main__":
    main()
