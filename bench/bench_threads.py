"""Epoch time of `nerve train` by torch thread count, with the machine's other cores idle and with them busy.

Run:  python bench/bench_threads.py [xin2019] [--data ../shared/data/conll2003] [--repeats 3]
Each measurement is one fresh `nerve train ... --set train.epochs=1` process; the figure is the epoch's
`train_seconds` (and `eval_seconds`) from its epochs.jsonl, the median of --repeats runs taken round robin.
"default" is no --threads option (nerve's default); "torch default" is the thread count torch picks by itself in
a fresh process. "busy" runs one CPU-bound process per other core (a Python busy loop) for the whole measurement.
Not pinned: the point is how threads share a machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]


def torch_default_threads() -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def epoch(config: str, data: str, threads: int | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nerve.cli", *(["--threads", str(threads)] if threads else []), "--device", "cpu",
               "train", config, "--data", data, "--out", f"{tmp}/run", "--set", "train.epochs=1", "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True)
        rec = json.loads(Path(f"{tmp}/run/epochs.jsonl").read_text().splitlines()[0])
        return rec["train_seconds"], rec["eval_seconds"]


def burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="xin2019")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "conll2003"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    tdef = torch_default_threads()
    print(f"machine: {cpu_name()}, {cores} cores, Python {platform.python_version()}")
    print(f"config: {args.config} on {args.data}; torch picks {tdef} threads by itself")
    choices = [("default", None), ("--threads 1", 1), ("--threads 2", 2)]
    if tdef not in (1, 2):
        choices.append((f"--threads {tdef} (torch default)", tdef))
    print(f"{'other cores':<12} {'threads':<28} {'train s (median)':>16} {'runs':>22} {'eval s':>7} {'vs best':>8}")
    for load in ("idle", "busy"):
        procs = burners(cores - 1) if load == "busy" else []
        try:
            time.sleep(1.0 if procs else 0.0)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in choices}
            for _ in range(args.repeats):  # round robin, so that drift hits every choice alike
                for name, threads in choices:
                    times[name].append(epoch(args.config, args.data, threads))
        finally:
            for p in procs:
                p.kill()
                p.wait()
        medians = {name: statistics.median(t for t, _ in ts) for name, ts in times.items()}
        best = min(medians.values())
        for name, threads in choices:
            label = name + (" (torch default)" if threads == tdef and "torch" not in name else "")
            runs = " ".join(f"{t:.1f}" for t, _ in times[name])
            ev = statistics.median(e for _, e in times[name])
            print(f"{load:<12} {label:<28} {medians[name]:16.2f} {runs:>22} {ev:7.2f} {medians[name] / best - 1:+8.1%}",
                  flush=True)

if __name__ == "__main__":
    main()
