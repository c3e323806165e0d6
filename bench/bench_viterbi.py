"""Why the ablation sweeps decode CRFs with a numba-compiled Viterbi: time per decode against the model's own
``CRF.decode`` (torch, float64, batches of 256 by length), and whether the paths are identical.

Run:  taskset -c 0 python bench/bench_viterbi.py RUN_DIR [--split test] [--repeats 10]
RUN_DIR is a trained CRF run (e.g. `nerve --threads 1 train ncrfpp_best --data ../shared/data/conll2003 --out R`).
Without a run it times 3,453 synthetic sentences of CoNLL-2003 test's lengths with 17 tags.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

torch.set_num_threads(1)

from machine import cpu_name  # noqa: E402  (bench/machine.py: the scripts run as python bench/X.py)

from nerve.model.crf import torch_viterbi, viterbi  # noqa: E402


def emissions(run: str | None, split: str):
    if run is None:
        rng = np.random.default_rng(0)
        lengths = rng.integers(1, 40, size=3453)
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        T = 17
        return rng.normal(scale=3, size=(lengths.sum(), T)), starts, (rng.normal(size=T), rng.normal(size=(T, T)),
                                                                     rng.normal(size=T))
    from nerve.analysis.capture import capture_activations
    from nerve.analysis.checks import check_activations
    from nerve.run import load_run, read_split

    loaded = load_run(run)
    path, sents = read_split(loaded, split)
    a = check_activations(capture_activations(loaded, sents, path)[0])
    if a.crf is None:
        raise SystemExit(f"{run}: not a CRF model")
    E = a.h.astype(np.float64) @ a.W.astype(np.float64).T + a.b.astype(np.float64)
    return E, a.sentence_starts, a.crf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?")
    ap.add_argument("--split", default="test")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    E, starts, crf = emissions(args.run, args.split)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread; {len(starts)} sentences, {E.shape[0]} tokens, "
          f"{E.shape[1]} tags")
    viterbi(E, starts, crf)  # compile (or load numba's cache) outside the timing
    times = {}
    for name, fn in (("torch CRF.decode", torch_viterbi), ("numba viterbi", viterbi)):
        t = time.perf_counter()
        for _ in range(args.repeats):
            paths = fn(E, starts, crf)
        times[name] = ((time.perf_counter() - t) / args.repeats, paths)
    for name, (sec, _) in times.items():
        print(f"{name:<18} {sec * 1000:7.1f} ms a decode")
    a, b = (p for _, p in times.values())
    ratio = times["torch CRF.decode"][0] / times["numba viterbi"][0]
    print(f"speed-up {ratio:.1f}x; identical paths: {bool(np.array_equal(a, b))}")


if __name__ == "__main__":
    main()
