"""Faults a run must survive: a full disk, two writers, a killed study, a non-finite loss, the umask."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, TINY_CFG
from tests.reliability_cases import can_mount, cli, tmpfs, train_args

needs_mount = pytest.mark.skipif(not can_mount(), reason="needs root and a mountable tmpfs (CI runs as root)")


def _metrics(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    m.pop("train_seconds", None)
    for e in m["epochs"]:
        for k in ("train_seconds", "eval_seconds", "sentences_per_second"):
            e.pop(k)
    return m


def _fill(mnt: Path, leave: int) -> Path:
    """Fill the file system at ``mnt`` until fewer than ``leave`` bytes are free."""
    ballast = mnt / "ballast"
    with open(ballast, "wb") as f:
        while shutil.disk_usage(mnt).free > leave:
            try:
                f.write(b"\0" * min(65536, max(4096, shutil.disk_usage(mnt).free - leave)))
                f.flush()
            except OSError:
                break
    return ballast


@needs_mount
def test_full_disk_train_fails_cleanly_then_resumes_to_the_same_metrics(tmp_path):
    full = tmp_path / "full"
    assert cli(*train_args(tmp_path, "train.epochs=3", out="full")).returncode == 0
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        run = mnt / "run"
        args = train_args(mnt, "train.epochs=3", out="run")
        # room for identity, config and vocab and one epoch's files, not for three
        ballast = _fill(mnt, 80_000)
        res = cli(*args)
        assert res.returncode == 2, res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("nerve: error: ") and "the disk is full" in last and str(run) in last, last
        assert "Traceback" not in res.stderr and "internal error" not in res.stderr
        assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
        assert not (run / "complete.json").exists() and (run / "checkpoint.pt").is_file()
        ballast.unlink()
        res = cli(*args)
        assert res.returncode == 0, res.stderr
        assert "resuming from the checkpoint of epoch" in res.stderr
        assert (run / "complete.json").is_file()
        assert _metrics(run) == _metrics(full)


@needs_mount
def test_full_disk_analyze_fails_cleanly_then_finishes(tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(tmp_path)).returncode == 0
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        out = mnt / "analysis"
        ballast = _fill(mnt, 200_000)
        res = cli("analyze", run, "--out", out, "--random-draws", "2", "--no-figures")
        assert res.returncode == 2 and "the disk is full" in res.stderr.strip().splitlines()[-1], res.stderr
        assert not (out / "complete.json").exists()
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
        ballast.unlink()
        res = cli("analyze", run, "--out", out, "--random-draws", "2", "--no-figures")
        assert res.returncode == 0, res.stderr
        assert (out / "complete.json").is_file()
        ref = tmp_path / "ref"
        assert cli("analyze", run, "--out", ref, "--random-draws", "2", "--no-figures").returncode == 0
        assert (out / "ablation.csv").read_text() == (ref / "ablation.csv").read_text()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc")
def test_killed_study_leaves_no_worker_alive(tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "nerve.cli", "study", str(TINY_CFG), "--data", str(TINY), "--out", str(out),
           "--seeds", "2", "--workers", "2", "--no-progress", "--set", "train.epochs=200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    workers: list[int] = []
    while time.time() < deadline and proc.poll() is None:
        logs = list(out.glob("runs/*/seed*/epochs.jsonl"))
        if len(logs) == 2:  # both workers are training
            workers = [p for p in _children(proc.pid) if "nerve" in Path(f"/proc/{p}/cmdline").read_text()
                       or "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()]
            break
        time.sleep(0.2)
    assert workers, "the study never started its workers"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while any(_alive(w) for w in workers) and time.time() - t0 < 10:
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, signal.SIGKILL)
    assert not survivors and time.time() - t0 <= 5, f"workers alive {time.time() - t0:.1f}s after the study died"


def test_two_trains_into_one_folder_leave_one_consistent_run(tmp_path):
    out = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "nerve.cli", *map(str, train_args(tmp_path, f"train.seed={s}",
                                                                                     "train.epochs=3"))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "is writing in this folder" in loser or "holds a run of another config" in loser, loser
    winner_seed = 1 + [code for code, _ in results].index(0)
    done = json.loads((out / "complete.json").read_text())
    ident = json.loads((out / "identity.json").read_text())
    assert done["fingerprint"] == ident["fingerprint"]
    assert ident["components"]["config"]["train"]["seed"] == winner_seed
    import tomllib

    assert tomllib.loads((out / "config.toml").read_text())["train"]["seed"] == winner_seed
    ref = tmp_path / "ref"
    assert cli(*train_args(tmp_path, f"train.seed={winner_seed}", "train.epochs=3", out="ref")).returncode == 0
    assert _metrics(out) == _metrics(ref)


def test_non_finite_loss_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    import torch

    from nerve.model.tagger import Tagger

    run = tmp_path / "run"
    assert cli(*train_args(tmp_path)).returncode == 0  # epoch 1, as a run of 2 epochs would have it
    model_before = (run / "model.pt").read_bytes()
    ckpt_before = (run / "checkpoint.pt").read_bytes()
    real, calls = Tagger.loss, []

    def loss(self, batch, **kwargs):
        calls.append(1)
        value = real(self, batch, **kwargs)
        return value * float("nan") if len(calls) == 3 else value

    monkeypatch.setattr(Tagger, "loss", loss)
    res = cli(*train_args(tmp_path, "train.epochs=2"))
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert "the training loss is nan at epoch 2, batch 3" in last and "checkpoint of epoch 1 is kept" in last, last
    assert (run / "model.pt").read_bytes() == model_before
    assert (run / "checkpoint.pt").read_bytes() == ckpt_before
    assert not (run / "complete.json").exists()
    assert torch.isfinite(torch.load(run / "model.pt", weights_only=False)["state_dict"]["hidden2tag.weight"]).all()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_outputs_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        assert cli(*train_args(tmp_path)).returncode == 0
        assert cli("analyze", run, "--out", run / "analysis", "--random-draws", "1", "--formats", "png").returncode == 0
    finally:
        os.umask(old)
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) > 20
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(mode)}


def test_a_run_that_never_finished_an_epoch_starts_over(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(TINY, corpus)
    train = corpus / "train.txt"
    good = train.read_text()
    train.write_text(good + "\nbroken\x0cline NN O\n")
    args = ["train", str(TINY_CFG), "--data", str(corpus), "--out", str(tmp_path / "run"), "--no-progress",
            "--set", "train.epochs=1"]
    res = cli(*args)
    assert res.returncode == 2 and "control character U+000C" in res.stderr
    train.write_text(good)  # fixed: another corpus checksum, and no epoch had finished
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "complete.json").is_file()


def test_a_failing_study_ends_with_its_one_line_error(tmp_path):
    """A run that fails stops the other workers; nothing (no resource-tracker warning) follows the error."""
    proc = subprocess.run([sys.executable, "-m", "nerve.cli", "study", str(TINY_CFG), "--data", str(TINY), "--out",
                           str(tmp_path / "st"), "--seeds", "2", "--workers", "2", "--no-progress", "--set",
                           "train.epochs=50", "--set", "train.lr=1e30"], capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("nerve: error: run base/seed") and "the training loss is nan" in lines[0]


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads /proc")
def test_a_worker_killed_from_outside_is_a_one_line_error(tmp_path):
    out = tmp_path / "study"
    proc = subprocess.Popen([sys.executable, "-m", "nerve.cli", "study", str(TINY_CFG), "--data", str(TINY), "--out",
                             str(out), "--seeds", "2", "--workers", "2", "--no-progress", "--set", "train.epochs=300"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(out.glob("runs/*/seed*/epochs.jsonl"))) < 1 and time.time() < deadline:
        time.sleep(0.2)
    workers = [p for p in _children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
    assert workers, "no worker found"
    os.kill(workers[0], signal.SIGKILL)  # as the out-of-memory killer would
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "a study worker died" in lines[0], err


def test_local_workers_hand_finished_tasks_to_idle_while_a_core_is_free():
    import time

    from nerve.study.workers import run_local

    seen, ticks = [], []
    run_local(time.sleep, [3.0, 0.0, 0.0], 2, ticks.append, idle=lambda finished: seen.append(list(finished)))
    assert sum(ticks) == 3 and seen and all(s and 3.0 not in s for s in seen)
