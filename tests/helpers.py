"""Run the `nerve` command line in this process and capture what it prints."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass


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
