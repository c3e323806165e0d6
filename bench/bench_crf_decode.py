"""Viterbi for CRF ablation sweeps: numpy over all sentences at once vs the model's own torch ``CRF.decode`` in
length-sorted batches of 256, on CoNLL-2003 dev sizes (3,250 sentences, 51,362 tokens, 9 BIO tags).

Run:  taskset -c 0 python bench/bench_crf_decode.py [--repeats 5]
Prints the machine, the median time of each decoder and whether their paths are identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

torch.set_num_threads(1)

from nerve.analysis.decoders import torch_viterbi  # noqa: E402
from nerve.analysis.viterbi import pad_positions, viterbi_numpy  # noqa: E402
from nerve.model.crf import transition_constraints  # noqa: E402

TAGS = ["B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.geometric(1 / 15.8, size=3250), 1, 124)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    em = rng.normal(size=(int(lengths.sum()), len(TAGS)))
    allowed, a_start, a_end = (t.numpy() for t in transition_constraints(TAGS, "BIO"))
    trans = rng.normal(size=(len(TAGS),) * 2) + np.where(allowed, 0.0, -10000.0)
    start = rng.normal(size=len(TAGS)) + np.where(a_start, 0.0, -10000.0)
    end = rng.normal(size=len(TAGS)) + np.where(a_end, 0.0, -10000.0)
    return em, starts, (start, trans, end)


def numpy_paths(em, starts, crf):
    sentence, position, lengths = pad_positions(starts, em.shape[0])
    padded = np.zeros((lengths.size, int(lengths.max()), em.shape[1]))
    padded[sentence, position] = em
    return viterbi_numpy(padded, lengths, *crf)[sentence, position]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    em, starts, crf = data()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"machine: {cpu}; torch {torch.__version__} threads {torch.get_num_threads()}; numpy {np.__version__}")
    decoders = {"numpy (all sentences)": lambda: numpy_paths(em, starts, crf),
                "torch CRF.decode (batches of 256)": lambda: torch_viterbi(em, starts, crf)}
    paths = {}
    for name, run in decoders.items():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            paths[name] = run()
            times.append(time.perf_counter() - t0)
        print(f"{name}: median {statistics.median(times):.3f} s over {args.repeats} ({', '.join(f'{t:.3f}' for t in times)})")
    a, b = paths.values()
    print(f"identical paths: {bool(np.array_equal(a, b))} ({em.shape[0]:,} tokens)")


if __name__ == "__main__":
    main()
