"""nerve's probe (fitted to convergence) against NeuroX's linear probe on identical activations and labels: the mean
over tags of the top-10 units (by |weight|) the two share.

NeuroX (Dalvi et al. 2019's toolkit, PyPI ``neurox``) pins torch 1.8 / numpy 1.19, so it lives in a venv of its
own, never the project's; the neurox wheel without its pins runs its linear probe under current torch and numpy:
    python3 -m venv /tmp/nxvenv
    /tmp/nxvenv/bin/pip install --no-deps neurox==1.0.9
    /tmp/nxvenv/bin/pip install torch numpy scipy scikit-learn imbalanced-learn tqdm
Run (project venv; it calls the NeuroX venv's python for NeuroX's half):
    taskset -c 0 python bench/compare_neurox_probe.py RUN_DIR [--split dev] [--labels pred]
        [--neurox-python /tmp/nxvenv/bin/python] [--l1 0.001] [--l2 0.001] [--epochs 10] [--seeds 0,1]
Both probes see the split's units standardised over the tokens (nerve's probe input) and the same labels (the
model's predictions, or ``--labels gold``). NeuroX: ``linear_probe.train_logistic_regression_probe`` (Adam, lr
0.001, batch 32, ``--epochs`` epochs, cross-entropy + l1·|W|₁ + l2·|W|₂; 0.001 and 0.001 as in NeuroX's
getting-started example) once per ``--seeds`` (torch's seed: the init), each tag's units ordered by
``linear_probe.get_top_neurons(probe, 1.0, class_to_idx)``; the two NeuroX seeds are compared with each other too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def neurox_half(data: str, out: str, l1: float, l2: float, epochs: int, seeds: list[int]) -> None:
    """In the NeuroX venv: train NeuroX's probe per seed on data's z and y; write each tag's top-10 units."""
    import torch
    from neurox.interpretation import linear_probe

    torch.set_num_threads(1)
    d = np.load(data)
    X, y, tags = d["z"].astype(np.float32), d["y"].astype(np.int64), [str(t) for t in d["tags"]]
    class_to_idx = {t: i for i, t in enumerate(tags)}
    result = {}
    for seed in seeds:
        torch.manual_seed(seed)
        t = time.perf_counter()
        probe = linear_probe.train_logistic_regression_probe(X, y, lambda_l1=l1, lambda_l2=l2, num_epochs=epochs)
        seconds = time.perf_counter() - t
        _, per_tag = linear_probe.get_top_neurons(probe, 1.0, class_to_idx)
        if min(len(v) for v in per_tag.values()) < 10:
            raise SystemExit("get_top_neurons(probe, 1.0) gave fewer than 10 units for a tag")
        result[str(seed)] = {"seconds": seconds, "top10": [[int(u) for u in per_tag[t][:10]] for t in tags]}
    Path(out).write_text(json.dumps(result), encoding="utf-8")


def shared(a, b) -> float:
    return float(np.mean([len(set(x) & set(w)) for x, w in zip(a, b)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--labels", choices=("pred", "gold"), default="pred")
    ap.add_argument("--neurox-python", default="/tmp/nxvenv/bin/python")
    ap.add_argument("--l1", type=float, default=0.001)
    ap.add_argument("--l2", type=float, default=0.001)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--neurox-half", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.neurox_half:
        return neurox_half(*args.neurox_half, args.l1, args.l2, args.epochs, seeds)

    from machine import cpu_name, probe_inputs

    from nerve.analysis import methods as M

    z, y, classes, arrays = probe_inputs(args.run, args.split, args.labels)
    tags = [str(arrays["tags"][c]) for c in classes]
    t = time.perf_counter()
    fit = M.probe_fit(z, y)
    seconds = time.perf_counter() - t
    ours = np.argsort(-np.abs(fit.coef), axis=1, kind="stable")[:, :10]
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "acts.npz", Path(tmp) / "neurox.json"
        np.savez(data, z=z, y=y, tags=np.array(tags))
        subprocess.run([args.neurox_python, __file__, args.run, "--neurox-half", str(data), str(out),
                        "--l1", str(args.l1), "--l2", str(args.l2), "--epochs", str(args.epochs),
                        "--seeds", args.seeds], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "TQDM_DISABLE": "1"})
        neurox = json.loads(out.read_text(encoding="utf-8"))
    version = subprocess.run([args.neurox_python, "-c", "import importlib.metadata as m; print(m.version('neurox'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"machine: {cpu_name()}; {args.split}: {z.shape[0]:,} tokens x {z.shape[1]} units, {len(tags)} tags "
          f"({args.labels} labels), standardised units")
    print(f"nerve probe: {seconds:.2f} s, {fit.n_iter} L-BFGS-B iterations, subgradient {fit.gradient:.2g} "
          f"(tol {fit.tol:g}), converged {fit.converged}")
    print(f"NeuroX {version} linear probe: Adam, {args.epochs} epochs, batch 32, lr 0.001, l1 {args.l1:g}, "
          f"l2 {args.l2:g}")
    print(f"{'comparison':<34} {'mean top-10 shared':>18}  per tag ({', '.join(tags)})")
    for seed, r in neurox.items():
        per = [len(set(a) & set(b)) for a, b in zip(ours, r["top10"])]
        name = f"nerve vs NeuroX seed {seed} ({r['seconds']:.0f} s)"
        print(f"{name:<34} {shared(ours, r['top10']):18.2f}  {per}")
    if len(neurox) > 1:
        (s0, r0), (s1, r1) = list(neurox.items())[:2]
        per = [len(set(a) & set(b)) for a, b in zip(r0["top10"], r1["top10"])]
        name = f"NeuroX seed {s0} vs seed {s1}"
        print(f"{name:<34} {shared(r0['top10'], r1['top10']):18.2f}  {per}")


if __name__ == "__main__":
    sys.exit(main())
