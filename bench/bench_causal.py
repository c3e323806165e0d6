"""Speed of the causal benchmark of ranking methods (issue 31), after capture: every method's scores, then for each
intervention (zero, mean, resample) the necessity sweeps (top k intervened) and the sufficiency sweeps (only the top
k kept), k = 0..K, with the curve's random draws, plus N random draws at the judged ks (1, 5, 10, 20) and M
variance-matched draws per method and tag at the reported k (10), in both directions.

Run:  taskset -c 0 python bench/bench_causal.py RUN_DIR [--max-k 50] [--judged-draws 1000] [--matched-draws 100]
(targets: xin2019 on CoNLL-2003, K = 50: 60 s; the grid's char-CNN + BiLSTM + CRF, K = 100: 5 min.)
RUN_DIR is a trained run (`nerve --threads 1 train xin2019 --data ../shared/data/conll2003 --out R`).
Prints the machine, the capture time, then the time of each part and the total after capture; one torch thread.
"""

from __future__ import annotations

import argparse
import time

import torch

torch.set_num_threads(1)

from machine import captured, cpu_name  # noqa: E402  (bench/machine.py: the scripts run as python bench/X.py)

from nerve.analysis.core import INTERVENTIONS, AnalysisSpec  # noqa: E402
from nerve.analysis.draws import (  # noqa: E402
    DrawSpec,
    matched_draw_scores,
    random_draw_scores,
    variance_deciles,
)
from nerve.analysis.heldout import method_score_matrices, method_sufficiency, method_sweeps, rank_input  # noqa: E402
from nerve.analysis.judging import JUDGED_K  # noqa: E402
from nerve.analysis.ranking import rank_units  # noqa: E402
from nerve.run import load_run  # noqa: E402

METHODS = ("sensitivity", "probeless", "selectivity", "probe", "gradxact", "ig", "ig_mean", "random")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--max-k", type=int, default=50)
    ap.add_argument("--random-draws", type=int, default=20)
    ap.add_argument("--judged-draws", type=int, default=1000)
    ap.add_argument("--matched-draws", type=int, default=100)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--ablate", default="zero,mean,resample")
    args = ap.parse_args()
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread")
    run = load_run(args.run)
    acts, seconds = captured(run)
    dev, test = acts["dev"], acts["test"]
    print(f"capture dev + test: {seconds:.1f} s; {test.h.shape[1]} units, {len(test.tags)} tags, "
          f"{len(test.h):,} test tokens, {test.decoder} decoding, k = 0..{args.max_k}, {args.random_draws} curve "
          f"draws, {args.judged_draws} judged draws and {args.matched_draws} matched draws at k = "
          f"{', '.join(map(str, JUDGED_K))}")
    spec = AnalysisSpec(split="test", rank_split="dev", methods=tuple(args.methods.split(",")), max_k=args.max_k,
                        interventions=tuple(args.ablate.split(",")), random_draws=args.random_draws, figures=())
    ranked = rank_input(dev)
    start = time.perf_counter()
    scores = method_score_matrices(ranked, spec.methods, spec.seed)
    rankings = {m: rank_units(s) for m, s in scores.items()}
    parts = {"method scores": time.perf_counter() - start}
    ks = tuple(k for k in JUDGED_K if k <= args.max_k)
    deciles = variance_deciles(dev.h)
    for a in spec.interventions:
        one = spec.replace(interventions=(a,))
        t = time.perf_counter()
        method_sweeps(ranked, test, one, rankings)
        parts[f"{a}: necessity curves"] = time.perf_counter() - t
        t = time.perf_counter()
        method_sufficiency(ranked, test, one, rankings)
        parts[f"{a}: sufficiency curves"] = time.perf_counter() - t
        values = INTERVENTIONS.get(a).token_values(dev.h, test.h, spec.seed)
        for keep in (False, True):
            draw = DrawSpec(ks, args.judged_draws, args.matched_draws, spec.seed, keep, (min(10, max(ks)),))
            t = time.perf_counter()
            random_draw_scores(test, values, draw)
            parts[f"{a}: {args.judged_draws} random draws ({'sufficiency' if keep else 'necessity'})"] = (
                time.perf_counter() - t)
            t = time.perf_counter()
            matched_draw_scores(test, values, rankings, deciles, draw)
            parts[f"{a}: {args.matched_draws} matched draws ({'sufficiency' if keep else 'necessity'})"] = (
                time.perf_counter() - t)
    for name, seconds in parts.items():
        print(f"  {name:48s} {seconds:7.1f} s")
    print(f"total after capture: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
