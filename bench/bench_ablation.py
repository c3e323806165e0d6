"""Time ``ablation_sweep`` on synthetic data of CoNLL-2003 dev size (softmax, 9 BIO tags, 50 units)."""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from nerve.analysis.ablation import Sweep, SweepInput, ablation_sweep  # noqa: E402
from nerve.analysis.ranking import rank_units  # noqa: E402
from nerve.analysis.sensitivity import sensitivity  # noqa: E402

TAGS = ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"]


def synthetic(n_tokens: int = 51_362, n_sentences: int = 3_250, n: int = 50, seed: int = 0) -> dict:
    """LSTM-like activations tanh(normal), normal W, gold = model prediction with 30% random tags."""
    rng = np.random.default_rng(seed)
    h = np.tanh(rng.normal(scale=1.5, size=(n_tokens, n))).astype(np.float32)
    W = rng.normal(size=(len(TAGS), n)).astype(np.float32)
    b = rng.normal(scale=0.5, size=len(TAGS)).astype(np.float32)
    b[-1] += 3.0  # O is the most frequent prediction, as in real data
    pred = (h.astype(np.float64) @ W.T.astype(np.float64) + b).argmax(axis=1)
    gold = np.where(rng.random(n_tokens) < 0.3, rng.integers(0, len(TAGS), n_tokens), pred)
    cuts = np.sort(rng.choice(np.arange(1, n_tokens), n_sentences - 1, replace=False))
    starts = np.concatenate([[0], cuts]).astype(np.int64)
    return {"h": h, "W": W, "b": b, "gold": gold, "pred": pred, "sentence_starts": starts}


def threads() -> str:
    """Thread settings of torch (if installed) and the BLAS environment variables."""
    parts = [f"{v}={os.environ.get(v)}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")]
    try:
        import torch

        torch.set_num_threads(1)
        parts.append(f"torch.get_num_threads()={torch.get_num_threads()}")
    except ImportError:
        parts.append("torch not installed")
    return ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max-k", type=int, default=50)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    d = synthetic()
    s = sensitivity(d["h"], d["W"], d["pred"])
    rankings = rank_units(s)
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        data = SweepInput(d["h"], d["W"], d["b"], d["gold"], d["sentence_starts"], TAGS)
        rows = ablation_sweep(data, rankings, Sweep(args.max_k, args.draws, 0))
        best = min(best, time.perf_counter() - t0)
    print(f"ablation_sweep: {best:.2f} s (best of {args.repeats}), {rows.size} rows, "
          f"{d['h'].shape[0]} tokens, {len(d['sentence_starts'])} sentences, n={d['h'].shape[1]}, "
          f"max_k={args.max_k}, draws={args.draws}")
    print(f"machine: processor={platform.processor() or platform.machine()!r}, cpu_count={os.cpu_count()}, "
          f"affinity={len(os.sched_getaffinity(0))} cores, numpy {np.__version__}, {threads()}")


if __name__ == "__main__":
    main()
