"""Run ``nerve ARGS`` and SIGKILL the process right after training step S of epoch E (both from 0), through the
trainer's batch callback: ``python tests/kill_at.py E S ARGS...`` (the fault injection of the kill tests and of
bench/bench_speed.py's start-up timing)."""

import os
import signal
import sys

from nerve import train as trainer
from nerve.cli import main

EPOCH, STEP = int(sys.argv[1]), int(sys.argv[2])
_train = trainer.train


def _kill(epoch: int, step: int) -> None:
    if (epoch, step) >= (EPOCH, STEP):
        os.kill(os.getpid(), signal.SIGKILL)


def train(*args, **kwargs):
    return _train(*args, **kwargs, on_batch=_kill)


trainer.train = train  # the CLI imports nerve.train.train when the command runs
sys.exit(main(sys.argv[3:]))
