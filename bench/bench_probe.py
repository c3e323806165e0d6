"""The probe fitted to convergence on real activations: time, iterations, the tolerance reached, and how far the
earlier, unconverged fits were from it (elastic-net objective, coefficients, top-10 units per tag).

Run:  taskset -c 0 python bench/bench_probe.py RUN_DIR [--split dev] [--labels pred] [--repeat 3] [--saga]
RUN_DIR is a trained run (e.g. `nerve --threads 1 train xin2019 --data ../shared/data/conll2003 --out R`). On the
split's standardised units against the model's predictions (``--labels gold``: the gold tags) it fits, with one
torch thread:
  - the probe (``methods.probe_fit``: L-BFGS-B to ``PROBE_TOL``), best of ``--repeat`` timings;
  - the same to a tolerance ten times tighter, the reference the others are compared with;
  - the probe before (lbfgs L2 solution, then 30 elastic-net saga passes from it; scikit-learn);
  - with ``--saga``: scikit-learn's saga from zero to its tol 1e-4 (minutes on a CoNLL dev split).
Every row: seconds, iterations (L-BFGS-B) or passes (saga), the largest component of the elastic-net objective's
minimum-norm subgradient, the objective, the largest coefficient difference from the reference, and the mean over
tags of the top-10 units (by |coefficient|) shared with the reference.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from machine import cpu_name, probe_inputs
from scipy.special import log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from nerve.analysis import methods as M


def objective(z, y, W, b) -> float:
    """scikit-learn's elastic-net objective: C · Σ log-loss + l1_ratio·|W|₁ + (1 − l1_ratio)/2·|W|²."""
    r = M.PROBE_L1_RATIO
    logp = log_softmax(z @ W.T + b, axis=1)[np.arange(len(y)), y]
    return float(-M.PROBE_C * logp.sum() + r * np.abs(W).sum() + (1 - r) / 2 * (W ** 2).sum())


def subgradient(z, y, W, b) -> float:
    """The largest component of the objective's minimum-norm subgradient (0 at the optimum)."""
    r = M.PROBE_L1_RATIO
    P = softmax(z @ W.T + b, axis=1)
    P[np.arange(len(y)), y] -= 1
    g = M.PROBE_C * (P.T @ z) + (1 - r) * W
    g = np.where(W != 0, g + r * np.sign(W), np.sign(g) * np.maximum(np.abs(g) - r, 0.0))
    return float(max(np.abs(g).max(), np.abs(M.PROBE_C * P.sum(axis=0)).max()))


def top10(W) -> np.ndarray:
    return np.argsort(-np.abs(W), axis=1, kind="stable")[:, :10]


def old_probe(z, y, passes: int = 30):
    """The probe until this change: lbfgs with L2 alone (1,000 iterations at most), then ``passes`` saga passes
    with the elastic net from there (warm start)."""
    clf = LogisticRegression(solver="lbfgs", C=M.PROBE_C, max_iter=1000).fit(z, y)
    clf.set_params(solver="saga", l1_ratio=M.PROBE_L1_RATIO, max_iter=passes, warm_start=True, random_state=0)
    return clf.fit(z, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--labels", choices=("pred", "gold"), default="pred")
    ap.add_argument("--repeat", type=int, default=3, help="timings of the probe (best is printed; default 3)")
    ap.add_argument("--saga", action="store_true", help="also scikit-learn's saga from zero to its tol 1e-4")
    args = ap.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    z, y, classes, arrays = probe_inputs(args.run, args.split, args.labels)
    print(f"machine: {cpu_name()}; {args.split}: {z.shape[0]:,} tokens x {z.shape[1]} units, {len(classes)} tags "
          f"({args.labels} labels); tol {M.PROBE_TOL:g}, L-BFGS-B memory {M.PROBE_MEMORY}")

    rows = {}
    seconds = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        fit = M.probe_fit(z, y)
        seconds.append(time.perf_counter() - t)
    rows[f"probe, tol {M.PROBE_TOL:g} (now)"] = (min(seconds), f"{fit.n_iter} it, {fit.n_evals} ev", fit.coef,
                                                 fit.intercept)
    t = time.perf_counter()
    ref = M.probe_fit(z, y, tol=M.PROBE_TOL / 10)
    rows[f"probe, tol {ref.tol:g} (reference)"] = (time.perf_counter() - t, f"{ref.n_iter} it, {ref.n_evals} ev",
                                                  ref.coef, ref.intercept)
    t = time.perf_counter()
    old = old_probe(z, y)
    rows["lbfgs L2 + 30 saga passes (before)"] = (time.perf_counter() - t, "30 passes", old.coef_, old.intercept_)
    if args.saga:
        t = time.perf_counter()
        saga = LogisticRegression(solver="saga", l1_ratio=M.PROBE_L1_RATIO, C=M.PROBE_C, tol=1e-4, max_iter=20_000,
                                  random_state=0).fit(z, y)
        rows["saga from zero, tol 1e-4"] = (time.perf_counter() - t, f"{saga.n_iter_[0]} passes", saga.coef_,
                                            saga.intercept_)
    print(f"probe: {min(seconds):.2f} s (best of {len(seconds)}: {', '.join(f'{s:.2f}' for s in seconds)}), "
          f"{fit.n_iter} L-BFGS-B iterations, {fit.n_evals} passes over the tokens, subgradient {fit.gradient:.2g} "
          f"<= tol {fit.tol:g}: converged {fit.converged}")
    print(f"{'fit':<36} {'seconds':>8} {'iterations':>18} {'subgradient':>11} {'objective':>14} "
          f"{'max |coef - ref|':>16} {'top-10 shared':>13}")
    for name, (sec, its, W, b) in rows.items():
        shared = np.mean([len(set(a) & set(c)) for a, c in zip(top10(W), top10(ref.coef))])
        print(f"{name:<36} {sec:8.2f} {its:>18} {subgradient(z, y, W, b):11.2g} {objective(z, y, W, b):14.6f} "
              f"{np.abs(W - ref.coef).max():16.2g} {shared:13.2f}")
    shared = np.mean([len(set(a) & set(c)) for a, c in zip(top10(old.coef_), top10(fit.coef))])
    print(f"top-10 units per tag shared by the probe before and now (mean over {len(classes)} tags): {shared:.2f}")


if __name__ == "__main__":
    main()
