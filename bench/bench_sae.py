"""The sae basis' fit (analysis/sae.py, a short torch module) against scikit-learn's MiniBatchDictionaryLearning on
the same activations: reconstruction (R² on the held-out split), sparsity (mean active features a token, L0), fit
and encode time, one thread (issue 33: why the SAE is hand-written).

Run:  taskset -c 0 python bench/bench_sae.py RUN_DIR [--alphas 0.05,0.1,0.2]
RUN_DIR: a trained run (e.g. xin2019 on CoNLL-2003); fitted on dev, measured on test.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

torch.set_num_threads(1)

from machine import captured, cpu_name  # noqa: E402

from nerve.analysis.sae import SAE_OPTIONS, encode_sae, fit_sae  # noqa: E402
from nerve.run import load_run  # noqa: E402
from nerve.threads import set_threads  # noqa: E402


def r2(h, rec):
    return float(1 - ((h - rec) ** 2).sum() / ((h - h.mean(axis=0)) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--l1", default="0.05,0.1,0.2", help="the torch SAE's L1 weights")
    ap.add_argument("--alphas", default="0.05,0.1,0.2,0.5", help="MiniBatchDictionaryLearning's alphas (sparsity)")
    args = ap.parse_args()
    set_threads(1)
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)  # the lasso codes of the smaller alphas (counted below)

    acts, _ = captured(load_run(args.run))
    dev, test = acts["dev"].h.astype(np.float64), acts["test"].h.astype(np.float64)
    m = SAE_OPTIONS["width"] * dev.shape[1]
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread; {dev.shape[0]:,} dev tokens (fit), "
          f"{test.shape[0]:,} test tokens (measured), {dev.shape[1]} units, {m} features")
    print(f"{'fit':44s} {'R2 test':>8s} {'L0 test':>8s} {'fit s':>7s} {'encode s':>9s}")
    for l1 in map(float, args.l1.split(",")):
        t = time.perf_counter()
        p = fit_sae(dev, 0, {"l1": l1})
        fit = time.perf_counter() - t
        t = time.perf_counter()
        a = encode_sae(p, test)
        enc = time.perf_counter() - t
        name = f"torch SAE, l1 {l1} ({SAE_OPTIONS['epochs']} epochs)"
        print(f"{name:44s} "
              f"{r2(test, a @ p['D'] + p['b_dec']):8.4f} {(a > 0).sum(axis=1).mean():8.1f} {fit:7.1f} {enc:9.2f}")
    mean = dev.mean(axis=0)
    for alpha in map(float, args.alphas.split(",")):
        t = time.perf_counter()
        mb = MiniBatchDictionaryLearning(n_components=m, alpha=alpha, batch_size=512, max_iter=10, random_state=0,
                                         transform_algorithm="lasso_cd", transform_alpha=alpha).fit(dev - mean)
        fit = time.perf_counter() - t
        t = time.perf_counter()
        a = mb.transform(test - mean)
        enc = time.perf_counter() - t
        name = f"sklearn MiniBatchDictionaryLearning, alpha {alpha}"
        print(f"{name:44s} "
              f"{r2(test, a @ mb.components_ + mean):8.4f} {(a != 0).sum(axis=1).mean():8.1f} {fit:7.1f} {enc:9.2f}")


if __name__ == "__main__":
    main()
