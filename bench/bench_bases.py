"""Speed of the bases' comparison (issue 33), after capture: each basis (neurons, pca, ica, sae) fitted on dev, the
model projected into it, every method's scores, and the necessity and sufficiency sweeps (k = 0..K, 20 curve draws)
under each intervention on test; then LEACE for every tag.

Run:  taskset -c 0 python bench/bench_bases.py RUN_DIR [--max-k 50] [--ablate zero,mean]
(targets: xin2019 on CoNLL-2003 in 2 min; the grid's char-CNN + BiLSTM + CRF in 10 min.)
Prints the machine, the capture time, each basis' fit, scores and sweeps, LEACE, and the total after capture.
"""

from __future__ import annotations

import argparse
import time

import torch

torch.set_num_threads(1)

from machine import captured, cpu_name  # noqa: E402

from nerve.analysis.bases import fit_basis, project  # noqa: E402
from nerve.analysis.core import AnalysisSpec  # noqa: E402
from nerve.analysis.heldout import method_score_matrices, method_sufficiency, method_sweeps, rank_input  # noqa: E402
from nerve.analysis.leace import leace_rows  # noqa: E402
from nerve.analysis.ranking import rank_units  # noqa: E402
from nerve.run import load_run  # noqa: E402
from nerve.study.plan import STUDY_METHODS  # noqa: E402
from nerve.threads import set_threads  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--max-k", type=int, default=50)
    ap.add_argument("--bases", default="neurons,pca,ica,sae")
    ap.add_argument("--methods", default=",".join(STUDY_METHODS))
    ap.add_argument("--ablate", default="zero,mean")
    args = ap.parse_args()
    set_threads(1)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread")
    acts, seconds = captured(load_run(args.run))
    dev, test = acts["dev"], acts["test"]
    print(f"capture dev + test: {seconds:.1f} s; {test.h.shape[1]} units, {len(test.tags)} tags, {len(test.h):,} test "
          f"tokens, {test.decoder} decoding; methods {args.methods}; {args.ablate}; necessity and sufficiency, "
          f"k = 0..{args.max_k}, 20 curve draws")
    start = time.perf_counter()
    for name in args.bases.split(","):
        t = time.perf_counter()
        basis = fit_basis(name, dev.h, seed=0)
        pdev, ptest = project(dev, basis), project(test, basis)
        fit = time.perf_counter() - t
        spec = AnalysisSpec(split="test", rank_split="dev", methods=tuple(args.methods.split(",")),
                            max_k=min(args.max_k, pdev.h.shape[1]), interventions=tuple(args.ablate.split(",")),
                            random_draws=20, figures=(), basis=name)
        ranked = rank_input(pdev)
        t = time.perf_counter()
        rankings = {m: rank_units(s) for m, s in method_score_matrices(ranked, spec.methods, spec.seed).items()}
        scores = time.perf_counter() - t
        t = time.perf_counter()
        method_sweeps(ranked, ptest, spec, rankings)
        method_sufficiency(ranked, ptest, spec, rankings)
        sweeps = time.perf_counter() - t
        print(f"  {name:8s} {pdev.h.shape[1]:4d} units: fit + projection {fit:6.1f} s, method scores {scores:6.1f} s, "
              f"sweeps {sweeps:6.1f} s")
    t = time.perf_counter()
    leace_rows(rank_input(dev), test)
    print(f"  leace (every tag): {time.perf_counter() - t:.1f} s")
    print(f"total after capture: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
