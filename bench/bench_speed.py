"""Training / decoding / start-up speed of a preset on CoNLL-2003, one pinned core.

Run:  taskset -c 0 python bench/bench_speed.py xin2019 [--data ../shared/data/conll2003]
Prints the machine, then sentences/s of full training epochs (median of --train-epochs), decoding dev, and the
start-up time of `nerve train` to its first training step (measured by killing the process right after step 0; median of
--startup-runs runs, with a bare `import torch` timed beside it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from nerve.config import load_config  # noqa: E402
from nerve.config.presets import resolve_config  # noqa: E402
from nerve.data.prepare import prepare, resolve_data  # noqa: E402
from nerve.model.tagger import Tagger  # noqa: E402
from nerve.run import predict  # noqa: E402
from nerve.train import Trainer, epoch_lr  # noqa: E402
from nerve.train.optim import make_optimizer  # noqa: E402

KILL_AT = Path(__file__).resolve().parents[1] / "tests" / "kill_at.py"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    aff = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return (f"{cpu}; {os.cpu_count()} cores, pinned to cores {aff}; torch {torch.__version__} threads "
            f"{torch.get_num_threads()}; numpy {np.__version__}; Python {platform.python_version()}")


def epoch_seconds(cfg, data, epochs: int) -> list[float]:
    """Seconds of each of ``epochs`` full epochs through the trainer's own loop (batching, word dropout, clipping,
    optimiser steps, the learning rate of each epoch), on one model."""
    torch.manual_seed(cfg.train.seed)
    model = Tagger(cfg, data.vocabs, cfg.embeddings.dim).train()
    model.seed_dropout(np.random.default_rng(0))
    opt = make_optimizer(cfg.train, model, cfg.embeddings.fine_tune)
    trainer = Trainer(cfg, Path("unused"), progress=False)
    seconds = []
    for epoch in range(epochs):
        opt.set_lr(epoch_lr(cfg, epoch))
        seconds.append(trainer.train_epoch(epoch, data, model, opt)[1])
    return seconds


def train_speed(cfg, data, epochs: int) -> list[float]:
    """Sentences/s of each of ``epochs`` full epochs (``epoch_seconds``)."""
    return [len(data.train_items) / secs for secs in epoch_seconds(cfg, data, epochs)]


def decode_speed(cfg, data, repeats: int = 3) -> float:
    dev, extra = data.evaluation("dev")
    model = Tagger(cfg, data.vocabs, cfg.embeddings.dim).eval()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(model, dev, extra, cfg.train.eval_batch_size)
        best = max(best, len(dev) / (time.perf_counter() - t0))
    return best


def startup(config: str, data_dir: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(KILL_AT), "0", "0", "--threads", "1", "train", config, "--data",
                        data_dir, "--out", str(Path(tmp) / "run"), "--no-progress"], capture_output=True)
        return time.perf_counter() - t0


def torch_import() -> float:
    """Wall time of a fresh ``python -c 'import torch'`` (this VM's speed drifts; it puts start-up in context)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"))
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--startup-runs", type=int, default=3)
    ap.add_argument("--train-epochs", type=int, default=3, help="epochs timed (the median is reported)")
    args = ap.parse_args()
    cfg = resolve_data(load_config(resolve_config(args.config), args.overrides), args.data)
    print(f"machine: {machine()}")
    print(f"config: {args.config} {' '.join(args.overrides)} (batching={cfg.train.batching}, "
          f"batch_size={cfg.train.batch_size})")
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(cfg, Path(tmp) / "vocab.json", lambda m: None)
    speeds = train_speed(cfg, data, args.train_epochs)
    print(f"train: median {statistics.median_high(speeds):,.0f} sentences/s over {len(speeds)} epochs "
          f"({', '.join(f'{v:,.0f}' for v in speeds)}; {len(data.train_items):,} sentences each)")
    print(f"decode dev: {decode_speed(cfg, data):,.0f} sentences/s ({len(data.sents['dev']):,} sentences, "
          f"batch {cfg.train.eval_batch_size})")
    times = sorted(startup(args.config, args.data) for _ in range(args.startup_runs))
    print(f"start-up to first training step: median {statistics.median_high(times):.2f} s of {args.startup_runs} "
          f"({', '.join(f'{t:.2f}' for t in times)}; process start included; `import torch` alone: "
          f"{torch_import():.2f} s)")


if __name__ == "__main__":
    main()
