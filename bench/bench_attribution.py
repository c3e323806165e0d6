"""Gradient × activation and integrated gradients (32 Gauss–Legendre steps, from 0) of every token's score of its
own tag: nerve's closed form (analysis/methods.py) against Captum's InputXGradient / IntegratedGradients on the
same tag head (all tokens as one example, internal batches of 4 steps: what nerve ran before), one thread; prints
each time and the largest difference of the per-tag scores (why the closed form is kept).

Run:  taskset -c 0 python bench/bench_attribution.py RUN_DIR   (a softmax run: log-probability; CRF: marginal)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

torch.set_num_threads(1)

from machine import captured, cpu_name  # noqa: E402

from nerve.analysis import methods as M  # noqa: E402
from nerve.analysis.heldout import default_target, rank_input  # noqa: E402
from nerve.run import load_run  # noqa: E402
from nerve.threads import set_threads  # noqa: E402


def captum_scores(x: M.RankInput, kind: str, target: str) -> np.ndarray:
    from captum.attr import InputXGradient, IntegratedGradients

    h = torch.as_tensor(np.asarray(x.h))  # the activations' precision, as the tag head's
    labels = torch.as_tensor(np.asarray(x.labels, dtype=np.int64))
    head, rows = M._tag_head(x, target), torch.arange(len(labels))

    def f(H):
        return head(H)[:, rows, labels].sum(dim=1)

    H = h[None]
    if kind == "gradxact":
        attr = InputXGradient(f).attribute(H.requires_grad_())[0]
    else:
        attr = IntegratedGradients(f).attribute(H, baselines=torch.zeros_like(H), n_steps=M.IG_STEPS,
                                                internal_batch_size=4)[0]
    sums, counts = np.zeros((x.n_tags, h.shape[1])), np.bincount(x.labels, minlength=x.n_tags)
    np.add.at(sums, x.labels, attr.detach().numpy().astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts[:, None]).T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    args = ap.parse_args()
    set_threads(1)
    acts, _ = captured(load_run(args.run), ("dev",))
    x = rank_input(acts["dev"])
    target = default_target(x)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread; dev: {len(x.labels):,} tokens, "
          f"{x.h.shape[1]} units, {x.n_tags} tags, target {target}")
    import captum.attr  # noqa: F401  (imported before timing, for both)

    for kind in ("gradxact", "ig"):
        t = time.perf_counter()
        ours = M._attribution_scores(x, kind, target)
        a = time.perf_counter() - t
        t = time.perf_counter()
        theirs = captum_scores(x, kind, target)
        b = time.perf_counter() - t
        diff = np.nanmax(np.abs(ours - theirs))
        print(f"  {kind:9s} closed form {a:6.2f} s, Captum {b:6.2f} s ({b / a:5.1f}x); largest difference {diff:.1e}")


if __name__ == "__main__":
    main()
