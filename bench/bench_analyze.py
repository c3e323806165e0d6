"""Full `nerve analyze` of a trained run on one pinned core, and the ablation sweep alone on its activations.

Run:  taskset -c 0 python bench/bench_analyze.py RUN_DIR
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_speed import machine


def main() -> None:
    run = sys.argv[1]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "analysis"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nerve.cli", "--threads", "1", "analyze", run, "--out", str(out)],
                       check=True, stderr=subprocess.DEVNULL)
        total = time.perf_counter() - t0
        arrays = dict(np.load(out / "activations.npz"))
        from nerve.analysis.ablation import Sweep, SweepInput, ablation_sweep
        from nerve.analysis.ranking import rank_units
        from nerve.analysis.sensitivity import sensitivity

        s = sensitivity(arrays["h"], arrays["W"], arrays["pred"])
        crf = None
        if str(arrays["decoder"]) == "crf":
            crf = (arrays["crf_start"], arrays["crf_transitions"], arrays["crf_end"])
        n = arrays["h"].shape[1]
        k = min(50, n)
        t0 = time.perf_counter()
        data = SweepInput(arrays["h"], arrays["W"], arrays["b"], arrays["gold"], arrays["sentence_starts"],
                          list(arrays["tags"]), crf)
        rows = ablation_sweep(data, rank_units(s), Sweep(k, 20, 0))
        sweep = time.perf_counter() - t0
    print(f"tokens {len(arrays['gold']):,}, units {n}, tags {len(arrays['tags'])}")
    print(f"ablation sweep (k = 0..{k}, top + bottom + 20 random draws): {sweep:.2f} s, {len(rows):,} rows")
    print(f"full `nerve analyze` (process start to exit, figures included): {total:.2f} s")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
