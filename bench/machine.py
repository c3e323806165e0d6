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
