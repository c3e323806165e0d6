"""Speed of the ranking methods and their held-out ablation sweeps (rank on dev, score on test), after capture.

Run:  taskset -c 0 python bench/bench_methods.py RUN_DIR [--max-k 50] [--random-draws 20] [--ablate zero]
(ncrfpp_best: --max-k 100; the acceptance targets are 30 s for xin2019 at k = 0..50, 120 s for ncrfpp_best.)
RUN_DIR is a trained run (e.g. `nerve --threads 1 train xin2019 --data ../shared/data/conll2003 --out R`).
Prints the machine, the capture time of both splits, then per method its scoring time and the time of its top-k
sweep, and the random draws' sweep; one torch thread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

torch.set_num_threads(1)

from machine import captured, cpu_name  # noqa: E402  (bench/machine.py: the scripts run as python bench/X.py)

from nerve.analysis.ablation import Sweep, ablation_sweep  # noqa: E402
from nerve.analysis.heldout import default_target, rank_input  # noqa: E402
from nerve.analysis.methods import METHODS, method_scores  # noqa: E402
from nerve.analysis.ranking import rank_units  # noqa: E402
from nerve.run import load_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--max-k", type=int, default=50)
    ap.add_argument("--random-draws", type=int, default=20)
    ap.add_argument("--ablate", choices=["zero", "mean"], default="zero")
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread")
    run = load_run(args.run)
    acts, seconds = captured(run)
    print(f"capture dev + test: {seconds:.1f} s; {acts['test'].h.shape[1]} units, "
          f"{len(acts['test'].tags)} tags, {acts['test'].decoder} decoding, k = 0..{args.max_k}, ablate {args.ablate}, "
          f"attribution target {default_target(rank_input(acts['dev']))}")
    dev, test = acts["dev"], acts["test"]
    values = dev.h.astype(np.float64).mean(axis=0) if args.ablate == "mean" else None
    total = 0.0
    for name in METHODS:
        if name == "random":
            continue
        t1 = time.perf_counter()
        x = rank_input(dev)
        ranking = rank_units(method_scores(name, x, 0, default_target(x)))
        t2 = time.perf_counter()
        ablation_sweep(test, ranking, Sweep(args.max_k, 0, 0, values, ("top",)))
        t3 = time.perf_counter()
        total += t3 - t1
        print(f"{name:<12} scores {t2 - t1:6.2f} s  top-k sweep {t3 - t2:6.2f} s")
    t1 = time.perf_counter()
    ablation_sweep(test, np.tile(np.arange(test.h.shape[1]), (len(test.tags), 1)),
                   Sweep(args.max_k, args.random_draws, 0, values, ("random",)))
    t2 = time.perf_counter()
    total += t2 - t1
    print(f"{'random':<12} {args.random_draws} draws sweep {t2 - t1:6.2f} s")
    print(f"total after capture: {total:.1f} s")


if __name__ == "__main__":
    main()
