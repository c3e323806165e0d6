"""Why the probe starts saga from the L2 solution: time, elastic-net objective and top-10 agreement of the probe fits.

Run:  taskset -c 0 python bench/bench_probe.py RUN_DIR [--split dev] [--reference 300]
RUN_DIR is a trained run. Fits scikit-learn's elastic-net LogisticRegression (the probe's settings) on the split's
standardised units against the model's predictions: cold saga with 200 passes (the probe until session 8), the
lbfgs L2 solution alone, and saga warm-started from it with 10, 30 (the probe now) and 100 passes; each is compared
with a warm start of ``--reference`` passes by objective and by the mean number of each tag's top-10 units shared.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from machine import cpu_name
from scipy.special import log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from nerve.analysis import methods as M


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--reference", type=int, default=300)
    args = ap.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    import torch

    torch.set_num_threads(1)
    from nerve.analysis.capture import capture_activations
    from nerve.run import load_run, read_split

    run = load_run(args.run)
    path, sents = read_split(run, args.split)
    arrays, _ = capture_activations(run, sents, path)
    h, y = arrays["h"].astype(np.float64), arrays["pred"]
    std = h.std(axis=0)
    z = (h - h.mean(axis=0)) / np.where(std > 0, std, 1.0)
    print(f"machine: {cpu_name()}; {args.split}: {z.shape[0]} tokens x {z.shape[1]} units, {len(np.unique(y))} tags")

    def objective(clf) -> float:
        W = clf.coef_
        logp = log_softmax(z @ W.T + clf.intercept_, axis=1)[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
        r = M.PROBE_L1_RATIO
        return float(-M.PROBE_C * logp.sum() + r * np.abs(W).sum() + (1 - r) / 2 * (W ** 2).sum())

    def top10(clf) -> np.ndarray:
        return np.argsort(-np.abs(clf.coef_), axis=1, kind="stable")[:, :10]

    fits = {}

    def timed(name, make):
        t = time.perf_counter()
        clf = make()
        fits[name] = (time.perf_counter() - t, objective(clf), top10(clf))

    timed("cold saga, 200 passes", lambda: LogisticRegression(
        solver="saga", l1_ratio=M.PROBE_L1_RATIO, C=M.PROBE_C, max_iter=200, random_state=0).fit(z, y))
    timed("lbfgs, L2 only", lambda: LogisticRegression(C=M.PROBE_C, max_iter=M.PROBE_INIT_ITER).fit(z, y))
    for passes in (10, M.PROBE_MAX_ITER, 100, args.reference):
        timed(f"warm saga, {passes} passes", lambda p=passes: M.probe_fit(z, y, max_iter=p))
    ref = fits[f"warm saga, {args.reference} passes"][2]
    print(f"{'fit':<26} {'seconds':>8} {'objective':>12} {'top-10 shared with the reference':>34}")
    for name, (sec, obj, top) in fits.items():
        shared = np.mean([len(set(a) & set(b)) for a, b in zip(top, ref)])
        print(f"{name:<26} {sec:8.1f} {obj:12.1f} {shared:34.2f}")


if __name__ == "__main__":
    main()
