"""What the bench scripts print about the machine they ran on (they run from any folder: `python bench/X.py`)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def captured(run, splits=("dev", "test")) -> tuple[dict, float]:
    """({split: checked activations}, seconds) of a loaded run's splits: the capture the benches time apart."""
    import time

    from nerve.analysis.capture import capture_activations
    from nerve.analysis.checks import check_activations
    from nerve.data.conll import read_conll

    t0 = time.perf_counter()
    acts = {}
    for split in splits:
        path = getattr(run.cfg.data, split)
        acts[split] = check_activations(capture_activations(run, read_conll(path), path)[0])
    return acts, time.perf_counter() - t0


def probe_inputs(run_dir: str, split: str, labels: str):
    """(z, y, classes, arrays) of a run's split for the probe benches: the units standardised over the tokens
    (a constant unit stays 0, as ``methods.probe_scores`` does), the label ids of ``labels`` ("pred" or "gold"),
    the tag ids they stand for, and the captured arrays."""
    import numpy as np
    import torch

    from nerve.analysis.capture import capture_activations
    from nerve.run import load_run, read_split

    torch.set_num_threads(1)
    run = load_run(run_dir)
    path, sents = read_split(run, split)
    arrays, _ = capture_activations(run, sents, path)
    h = arrays["h"].astype(np.float64)
    classes, y = np.unique(arrays[labels], return_inverse=True)
    std = h.std(axis=0)
    return (h - h.mean(axis=0)) / np.where(std > 0, std, 1.0), y, classes, arrays
