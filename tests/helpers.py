"""Run the `nerve` command line in this process and capture what it prints."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    """What a command returned and printed (the fields of subprocess.CompletedProcess that tests read)."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args, cwd: str | os.PathLike | None = None) -> Result:
    """``nerve ARGS`` through ``nerve.cli.main`` in this process, stdout and stderr captured."""
    from nerve.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
    return Result(code, out.getvalue(), err.getvalue())


def conll_slice(src: Path, dst: Path, n: int) -> None:
    """Write the first ``n`` sentences of the CoNLL file ``src`` to ``dst``."""
    out, count = [], 0
    for line in src.read_text(encoding="utf-8").splitlines():
        out.append(line)
        if not line.strip():
            count += 1
            if count > n:
                break
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")


def small_conll(shared_corpus: Path, dst: Path, train: int = 500, dev: int = 150, test: int = 150) -> Path:
    """A corpus folder ``dst`` holding the first sentences of each split of ``shared_corpus``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.txt", train), ("valid.txt", dev), ("test.txt", test)):
        conll_slice(shared_corpus / name, dst / name, n)
    return dst


def fail_on_seed_two(spec: dict) -> int:
    """A study task for the worker tests: seed 2 fails with an error nerve did not anticipate."""
    if spec["seed"] == 2:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory\nsecond line")
    return spec["seed"]
