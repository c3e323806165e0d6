"""Every bad-input and fault case of docs/RELIABILITY.md: how to set it up, the command, and what the user sees.

`python tests/reliability_cases.py` runs each case through the CLI and rewrites docs/RELIABILITY.md with the
messages actually printed; tests/test_reliability.py runs the same cases as tests. Cases run the CLI in this
process (``nerve.cli.main``), except where another process is what is being tested.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from tests.helpers import Result, cli  # noqa: E402

FIX = ROOT / "tests" / "fixtures"
TINY, CFG = FIX / "tiny", FIX / "tiny.toml"
GOOD = "EU NNP I-NP B-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP B-MISC\n\nPeter NNP I-NP B-PER\n"


@dataclass
class Case:
    id: str
    group: str
    what: str
    setup: Callable[[Path], list[str]]  # writes files under tmp, returns the CLI arguments
    expect: str  # substring of stderr (exit 2), or "" when the input must be read correctly (exit 0)
    code: int = 2
    check: Callable[[Path], None] | None = None  # further assertions on what the command left in tmp
    root: bool = False  # needs root (mounts a small tmpfs)
    shown: str = ""  # for docs/RELIABILITY.md when the command prints nothing on stderr


def corpus(train: bytes | str) -> Callable[[Path], list[str]]:
    """A corpus whose train.txt is ``train`` (valid/test from the tiny corpus), trained for one epoch."""
    def setup(tmp: Path) -> list[str]:
        d = tmp / "corpus"
        d.mkdir()
        (d / "train.txt").write_bytes(train if isinstance(train, bytes) else train.encode("utf-8"))
        for name in ("valid.txt", "test.txt"):
            shutil.copy(TINY / name, d / name)
        return ["train", str(CFG), "--data", str(d), "--out", str(tmp / "run"), "--set", "train.epochs=1",
                "--no-progress"]
    return setup


def train_args(tmp: Path, *sets: str, out: str = "run", cfg: Path = CFG) -> list[str]:
    args = ["train", str(cfg), "--data", str(TINY), "--out", str(tmp / out), "--no-progress", "--set",
            "train.epochs=1"]
    for s in sets:
        args += ["--set", s]
    return args


def train_with(*sets: str, cfg: Path = CFG) -> Callable[[Path], list[str]]:
    return lambda tmp: train_args(tmp, *sets, cfg=cfg)


def embeddings(text: str | bytes, name: str = "emb.txt") -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        p = tmp / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return train_with(f'embeddings.source="{p}"', "embeddings.dim=3")(tmp)
    return setup


_BUILT: dict[tuple, Path] = {}  # what a case set up once in this process, copied for every case that needs it


def _built(key: tuple, build: Callable[[Path], Path]) -> Path:
    """The folder ``build(cache)`` makes, made once per process under a temporary folder removed at exit."""
    import atexit
    import tempfile

    if key not in _BUILT:
        cache = Path(tempfile.mkdtemp(prefix="nerve-cases-"))
        atexit.register(shutil.rmtree, cache, True)
        _BUILT[key] = build(cache)
    return _BUILT[key]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".nerve.lock"))
    return dst


def _train(tmp: Path, *sets: str, out: str = "run") -> Path:
    """A finished tiny run (one epoch, ``sets``) at ``tmp/out``: trained once per process, then copied (a run
    folder holds no path of its own)."""
    def build(cache: Path) -> Path:
        res = cli(*train_args(cache, *sets))
        assert res.returncode == 0, res.stderr
        return cache / "run"
    return _copy(_built(("run", *sets), build), tmp / out)


def _study(tmp: Path) -> Path:
    """A finished one-seed study (``_study_args``) at ``tmp/study``, run once per process, then copied."""
    def build(cache: Path) -> Path:
        res = cli(*_study_args(cache))
        assert res.returncode == 0, res.stderr
        return cache / "study"
    return _copy(_built(("study",), build), tmp / "study")


def trained(mutate: Callable[[Path], None], command: str = "evaluate") -> Callable[[Path], list[str]]:
    """Train a tiny run, damage it with ``mutate``, then run ``command`` on it."""
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp)
        mutate(run)
        if command == "evaluate":
            return ["evaluate", str(run), "--split", "test"]
        return ["analyze", str(run), "--out", str(tmp / "analysis"), "--random-draws", "2", "--no-figures"]
    return setup


def analysed(mutate: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """Train and analyse a tiny run, then let ``mutate`` damage it and return the command to run."""
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp)
        res = cli("analyze", run, "--out", run / "analysis", "--random-draws", "2", "--no-figures")
        assert res.returncode == 0, res.stderr
        return mutate(run)
    return setup


def _truncate(run: Path) -> None:
    data = (run / "model.pt").read_bytes()
    (run / "model.pt").write_bytes(data[: len(data) // 2])


def _garbage(run: Path) -> None:
    (run / "model.pt").write_bytes(b"\x00\x01 definitely not a checkpoint" * 100)


def _other_config(run: Path) -> None:
    cfg = (run / "config.toml").read_text().replace("hidden = 16", "hidden = 32")
    (run / "config.toml").write_text(cfg)


def _old_version(run: Path) -> None:
    import torch

    payload = torch.load(run / "model.pt", weights_only=False)
    payload["format_version"] = 0
    torch.save(payload, run / "model.pt")


def _missing_vocab(run: Path) -> None:
    (run / "vocab.json").unlink()


def _missing_config(tmp: Path) -> list[str]:
    return ["train", str(tmp / "nope.toml"), "--data", str(TINY), "--out", str(tmp / "run")]


# ----------------------------------------------------------------------------- run identity and writers


def _study_args(tmp: Path, *sets: str) -> list[str]:
    args = ["study", str(CFG), "--data", str(TINY), "--out", str(tmp / "study"), "--seeds", "1", "--workers", "1",
            "--no-progress", "--set", "train.epochs=1", "--methods", "none", "--no-figures"]
    for s in sets:
        args += ["--set", s]
    return args


def _study_changed(tmp: Path) -> list[str]:
    _study(tmp)
    return _study_args(tmp, "model.hidden=12")


def _study_rerun_changed(tmp: Path) -> list[str]:
    return _study_changed(tmp) + ["--rerun-changed"]


def _check_retrained(tmp: Path) -> None:
    import tomllib

    cfg = tomllib.loads((tmp / "study" / "runs" / "base" / "seed1" / "config.toml").read_text())
    assert cfg["model"]["hidden"] == 12


def hold_lock(folder: Path, command: str = "nerve train") -> subprocess.Popen:
    """Another process that holds ``folder``'s writer lock until it is killed."""
    code = ("import sys, time; from nerve.folder import writer_lock\n"
            f"with writer_lock({str(folder)!r}, {command!r}):\n    print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


_HOLDERS: list[subprocess.Popen] = []


def _second_writer(tmp: Path) -> list[str]:
    _HOLDERS.append(hold_lock(tmp / "run"))
    return train_args(tmp)


def _second_analysis(tmp: Path) -> list[str]:
    run = _train(tmp)
    _HOLDERS.append(hold_lock(run / "analysis", "nerve analyze"))
    return ["analyze", str(run), "--out", str(run / "analysis"), "--random-draws", "2", "--no-figures"]


def _no_partial_run(tmp: Path) -> None:
    assert not (tmp / "run" / "model.pt").exists() and not (tmp / "run" / "complete.json").exists()


def _interrupted_analysis(folder: bool) -> Callable[[Path], list[str]]:
    def mutate(run: Path) -> list[str]:  # what kill -9 after sensitivity.csv leaves: no ablation, no marker
        (run / "analysis" / "complete.json").unlink()
        (run / "analysis" / "ablation.csv").unlink()
        return ["compare", run / "analysis" if folder else run, "--out", run.parent / "cmp", "--no-figures"]
    return mutate


def _check_reanalysed(tmp: Path) -> None:
    assert (tmp / "run" / "analysis" / "ablation.csv").is_file()
    assert (tmp / "run" / "analysis" / "complete.json").is_file()


def _copied_activations(tmp: Path) -> list[str]:
    a, b = _train(tmp, out="a"), _train(tmp, "train.seed=2", out="b")
    for run in (a, b):
        assert cli("analyze", run, "--out", run / "analysis", "--random-draws", "2", "--no-figures").returncode == 0
    shutil.copy(b / "analysis" / "activations.npz", a / "analysis" / "activations.npz")
    return ["compare", a / "analysis", b / "analysis", "--out", tmp / "cmp"]


def _retrained_after_analysis(tmp: Path) -> list[str]:
    run = _train(tmp)
    assert cli("analyze", run, "--out", run / "analysis", "--random-draws", "2", "--no-figures").returncode == 0
    assert cli(*train_args(tmp, "train.epochs=2")).returncode == 0  # extended: a new model.pt
    return ["plot", "ablation", run, "--tag", "B-PER", "--out", tmp / "fig.png"]


def _nan_loss(tmp: Path) -> list[str]:
    return train_args(tmp, "train.lr=1e30")


# ----------------------------------------------------------------------------- lines


def _sentences(n: int, token: str = "Peter") -> str:
    return "".join(f"{token} NNP I-NP B-PER\nsaid VBD I-VP O\n\n" for _ in range(n))


def _evaluate_file(text: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp)
        (tmp / "split.txt").write_text(text, encoding="utf-8")
        return ["evaluate", str(run), "--split", str(tmp / "split.txt"), "--json"]
    return setup


def _check_300(tmp: Path) -> None:
    import json

    scores = json.loads(_LAST["stdout"])
    assert scores["sentences"] == 300, scores.get("sentences")


_LAST: dict[str, str] = {}


def _decode_text(text: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp)
        (tmp / "in.txt").write_text(text, encoding="utf-8")
        return ["decode", str(run), str(tmp / "in.txt"), "--out", str(tmp / "out.txt")]
    return setup


def _check_two_lines(tmp: Path) -> None:
    lines = (tmp / "out.txt").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 3 and lines[2] == "", lines  # two lines, each ended by \n


# ----------------------------------------------------------------------------- paths and file systems


def _out_is_file(command: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / "taken").write_text("x")
        if command == "train":
            return train_args(tmp, out="taken")
        run = _train(tmp)
        if command == "analyze":
            return ["analyze", str(run), "--out", str(tmp / "taken")]
        return ["compare", str(run), "--out", str(tmp / "taken")]
    return setup


def _decode_to_folder(tmp: Path) -> list[str]:
    run = _train(tmp)
    (tmp / "in.txt").write_text("Peter said\n")
    (tmp / "outdir").mkdir()
    return ["decode", str(run), str(tmp / "in.txt"), "--out", str(tmp / "outdir")]


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "4m", options: str = ""):
    """A small tmpfs mounted at ``path`` for the block (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",{options}" if options else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


_MOUNTS: list[contextlib.ExitStack] = []


def _mounted(tmp: Path, size: str, options: str = "") -> Path:
    stack = contextlib.ExitStack()
    mnt = stack.enter_context(tmpfs(tmp / "mnt", size, options))
    _MOUNTS.append(stack)
    return mnt


def _read_only(tmp: Path) -> list[str]:
    return train_args(tmp, out=str(_mounted(tmp, "1m", "ro") / "run"))


def _full_disk(tmp: Path) -> list[str]:
    mnt = _mounted(tmp, "40k")
    return train_args(tmp, out=str(mnt / "run"))


def _check_nothing_half_written(tmp: Path) -> None:
    run = tmp / "mnt" / "run"
    left = [p.name for p in run.iterdir()] if run.is_dir() else []
    assert not [n for n in left if n.endswith(".tmp")], left
    assert "complete.json" not in left, left


# ----------------------------------------------------------------------------- unchecked values and bounds


def _ncrfpp(lines: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        cfg = tmp / "x.config"
        cfg.write_text(f"train_dir={TINY / 'train.txt'}\ndev_dir={TINY / 'valid.txt'}\n"
                       f"test_dir={TINY / 'test.txt'}\nword_emb_dir={FIX / 'tiny_emb.txt'}\nword_emb_dim=8\n"
                       f"iteration=1\nhidden_dim=16\n{lines}")
        return ["train", str(cfg), "--out", str(tmp / "run"), "--no-progress"]
    return setup


def _npz_compare(damage: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def mutate(run: Path) -> list[str]:
        damage(run / "analysis" / "activations.npz")
        return ["compare", run / "analysis", "--out", run.parent / "cmp"]
    return mutate


def _long_token(tmp: Path) -> list[str]:
    run = _train(tmp, "model.char=cnn", out="charrun")
    (tmp / "in.txt").write_text("Peter " + "x" * 100_000 + " said\n")
    return ["decode", str(run), str(tmp / "in.txt"), "--out", str(tmp / "out.txt")]


def _decode_nbest(n: int) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp, "model.decoder=crf")
        (tmp / "in.txt").write_text("Peter said\n")
        return ["decode", str(run), str(tmp / "in.txt"), "--out", str(tmp / "out.txt"), "--nbest", str(n)]
    return setup


def _analyze_with(*extra: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp)
        return ["analyze", str(run), "--out", str(tmp / "analysis"), *extra]
    return setup


def _evaluate_broken_pipe(tmp: Path) -> list[str]:
    run = _train(tmp)
    return ["evaluate", str(run), "--json"]


# ----------------------------------------------------------------------------- found by a hostile review


def _model_swapped(command: str) -> Callable[[Path], list[str]]:
    """Run a's model.pt replaced by run b's (same config, another seed), then ``command`` on run a."""
    def setup(tmp: Path) -> list[str]:
        a, b = _train(tmp, out="a"), _train(tmp, "train.seed=2", out="b")
        shutil.copy(b / "model.pt", a / "model.pt")
        if command == "evaluate":
            return ["evaluate", str(a), "--split", "test"]
        return train_args(tmp, out="a")
    return setup


def _study_model_swapped(tmp: Path) -> list[str]:
    args = _study_args(tmp) + ["--seeds", "2"]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    runs = tmp / "study" / "runs" / "base"
    shutil.copy(runs / "seed2" / "model.pt", runs / "seed1" / "model.pt")
    return args


def _unfinished(tmp: Path) -> list[str]:
    run = _train(tmp)
    (run / "complete.json").unlink()  # what a kill -9 mid-training leaves: no completion marker
    return ["evaluate", str(run), "--split", "test"]


def _finished_without_checkpoint(tmp: Path) -> list[str]:
    run = _train(tmp)
    (run / "checkpoint.pt").unlink()
    return train_args(tmp, "model.hidden=12")


def _rerun_changed_while_training(tmp: Path) -> list[str]:
    _study(tmp)
    _HOLDERS.append(hold_lock(tmp / "study" / "runs" / "base" / "seed1"))
    return _study_args(tmp, "model.hidden=12") + ["--rerun-changed"]


def _check_run_kept(tmp: Path) -> None:
    assert (tmp / "study" / "runs" / "base" / "seed1" / "model.pt").is_file()


def _decode_to(kind: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        run = _train(tmp)
        (tmp / "in.txt").write_text("Peter said\n")
        target = tmp / "out"
        if kind == "fifo":
            os.mkfifo(target)
        else:
            (tmp / "real.txt").write_text("old")
            target.symlink_to(tmp / "real.txt")
        return ["decode", str(run), str(tmp / "in.txt"), "--out", str(target)]
    return setup


def _check_symlink_kept(tmp: Path) -> None:
    assert (tmp / "out").is_symlink() and "Peter/" in (tmp / "real.txt").read_text()


def _damaged_identity(tmp: Path) -> list[str]:
    run = _train(tmp)
    (run / "identity.json").write_text('{"fingerprint": "x", "components": []}')
    return train_args(tmp)


def _grid_collision(tmp: Path) -> list[str]:
    for name in ("e b.txt", "e_b.txt"):
        shutil.copy(FIX / "tiny_emb.txt", tmp / name)
    return _study_args(tmp) + ["--grid", f"embeddings.source={tmp / 'e b.txt'},{tmp / 'e_b.txt'}"]


def _unrecorded_ablation(tmp: Path) -> list[str]:
    import json

    run = _train(tmp)
    assert cli("analyze", run, "--out", run / "analysis", "--random-draws", "2", "--no-figures").returncode == 0
    marker = json.loads((run / "analysis" / "complete.json").read_text())
    del marker["files"]["ablation.csv"]
    (run / "analysis" / "complete.json").write_text(json.dumps(marker))
    return ["plot", "ablation", run, "--tag", "B-PER", "--out", tmp / "fig.png"]


def _emb_bom(tmp: Path) -> list[str]:
    return embeddings(b"\xef\xbb\xbfeu 1 2 3\npeter 1 2 3\n")(tmp)


# ----------------------------------------------------------------------------- explorer, server, package


def _analysed_run(tmp: Path) -> Path:
    def build(cache: Path) -> Path:
        run = _train(cache)
        res = cli("analyze", run, "--out", run / "analysis", "--random-draws", "2", "--max-k", "4", "--no-figures")
        assert res.returncode == 0, res.stderr
        return run
    return _copy(_built(("analysed",), build), tmp / "run")


USER_FILES = {"data/report.js": "var report = 1;\n", "data/run.js": "var run = 2;\n",
              "data/results.js": "var results = 3;\n"}


def _explore_into_users_folder(tmp: Path) -> list[str]:
    run = _analysed_run(tmp)
    for rel, text in USER_FILES.items():
        (tmp / "ex" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "ex" / rel).write_text(text)
    return ["explore", str(run), "--out", str(tmp / "ex"), "--no-progress"]


def _check_user_files_kept(tmp: Path) -> None:
    assert {rel: (tmp / "ex" / rel).read_text() for rel in USER_FILES} == USER_FILES
    assert (tmp / "ex" / "data" / "r0.js").is_file()


def _explore_over_users_page(tmp: Path) -> list[str]:
    run = _analysed_run(tmp)
    (tmp / "ex").mkdir()
    (tmp / "ex" / "index.html").write_text("<p>my page</p>")
    return ["explore", str(run), "--out", str(tmp / "ex"), "--no-progress"]


def _explore_study_copy(move: bool) -> Callable[[Path], list[str]]:
    """A finished one-run study copied (``cp -r``) or moved (``mv``) to another folder, then explored."""
    def setup(tmp: Path) -> list[str]:
        _study(tmp)
        shutil.copytree(tmp / "study", tmp / "copy")
        if move:
            shutil.rmtree(tmp / "study")
        return ["explore", str(tmp / "copy"), "--out", str(tmp / "ex"), "--no-progress"]
    return setup


def _check_reads_the_copy(tmp: Path) -> None:
    text = (tmp / "ex" / "data" / "r0.js").read_text()
    assert f'"analysis_dir":"{(tmp / "copy" / "runs" / "base" / "seed1" / "analysis").resolve()}"' in text


def _check_version(tmp: Path) -> None:
    from nerve import __version__

    assert _LAST["stdout"] == f"nerve {__version__}\n", _LAST["stdout"]


def _serve_unknown_host(tmp: Path) -> list[str]:
    return ["serve", str(_analysed_run(tmp)), "--host", "no-such-host.invalid", "--port", "0"]



# ----------------------------------------------------------------------------- wave 3: one model is one run


def _grid_seed(tmp: Path) -> list[str]:
    return ["study", str(CFG), "--data", str(TINY), "--out", str(tmp / "s"), "--seeds", "1", "--no-progress",
            "--grid", "train.seed=1,2"]


def _grid_same_config(tmp: Path) -> list[str]:
    return ["study", str(CFG), "--data", str(TINY), "--out", str(tmp / "s"), "--seeds", "1", "--no-progress",
            "--grid", "train.lr=0.1,0.10"]


def _check_no_study(tmp: Path) -> None:
    assert not (tmp / "s").exists()


def _compare_one_analysis_thrice(tmp: Path) -> list[str]:
    _analysed_run(tmp)
    os.chdir(tmp)  # the third path names the same folder through the working directory
    return ["compare", "run", "run/analysis", str(tmp / "run"), "--out", str(tmp / "cmp")]


def _compare_two_splits(tmp: Path) -> list[str]:
    run = _analysed_run(tmp)
    res = cli("analyze", run, "--split", "dev", "--out", tmp / "an_dev", "--random-draws", "2", "--max-k", "4",
              "--no-figures")
    assert res.returncode == 0, res.stderr
    return ["compare", str(run / "analysis"), str(tmp / "an_dev"), "--out", str(tmp / "cmp")]


def _compare_copied_run(tmp: Path) -> list[str]:
    run = _analysed_run(tmp)
    _copy(run, tmp / "copy")
    return ["compare", str(run), str(tmp / "copy"), "--out", str(tmp / "cmp")]


def _check_no_comparison(tmp: Path) -> None:
    assert not (tmp / "cmp").exists()


def _rank_split_without_misc(tmp: Path) -> list[str]:
    run = _train(tmp)
    lines = (TINY / "valid.txt").read_text().splitlines()
    (tmp / "rank.txt").write_text("\n".join(" ".join([*ln.split()[:-1], "O"]) if ln.endswith("MISC") else ln
                                            for ln in lines) + "\n")
    return ["analyze", str(run), "--rank-split", str(tmp / "rank.txt"), "--bucket", "gold", "--methods",
            "sensitivity,random", "--random-draws", "2", "--max-k", "3", "--no-figures", "--out", str(tmp / "a")]


def _check_misc_not_judged(tmp: Path) -> None:
    import csv

    rows = list(csv.DictReader((tmp / "a" / "methods_summary.csv").open()))
    assert rows and not [r for r in rows if r["target_tag"].endswith("MISC")]


def _check_rows_once(tmp: Path) -> None:
    lines = (tmp / "analysis" / "methods.csv").read_text().splitlines()
    assert len(lines) == len(set(lines))


def _study_more_epochs(tmp: Path) -> list[str]:
    _study(tmp)
    return _study_args(tmp, "train.epochs=2")


def _check_extension_recorded(tmp: Path) -> None:
    import json

    changes = json.loads((tmp / "study" / "study.json").read_text())["changes"]
    assert [(c["run_dir"], c["action"]) for c in changes] == [("runs/base/seed1", "extended")]


def _unseen_tag(tmp: Path) -> list[str]:
    run = _train(tmp)
    (tmp / "eval.txt").write_text("EU NNP I-NP B-ORG\nrejects VBZ I-VP O\n\nPeter NNP I-NP B-PER\n"
                                  "Blackburn NNP I-NP I-PER\nsaid VBD I-VP B-FOO\n")
    return ["analyze", str(run), "--split", str(tmp / "eval.txt"), "--out", str(tmp / "a")]


CASES = [
    # corpus files
    Case("empty-file", "corpus", "empty train file", corpus(""), "no sentences"),
    Case("blank-lines", "corpus", "only blank lines", corpus("\n\n  \n\n"), "no sentences"),
    Case("columns", "corpus", "a line with the wrong number of columns", corpus(GOOD + "Smith NNP B-PER\n"),
         "train.txt:6: found 3 columns; expected 4"),
    Case("tabs-spaces", "corpus", "mixed tabs and spaces", corpus(GOOD.replace(" ", "\t", 2)), "", 0),
    Case("crlf", "corpus", "Windows line endings", corpus(GOOD.replace("\n", "\r\n")), "", 0),
    Case("bom", "corpus", "a UTF-8 byte-order mark", corpus(b"\xef\xbb\xbf" + GOOD.encode()), "", 0),
    Case("utf8", "corpus", "invalid UTF-8 bytes", corpus(GOOD.encode() + b"Z\xffrich NNP I-NP B-LOC\n"),
         "train.txt:6: invalid UTF-8 byte 0xff"),
    Case("tag-underscore", "corpus", "tag B_PER", corpus(GOOD.replace("B-PER", "B_PER")),
         "train.txt:5: tag 'B_PER' is not O or B-/I-/E-/S-TYPE"),
    Case("tag-prefix", "corpus", "tag X-PER", corpus(GOOD.replace("B-PER", "X-PER")),
         "train.txt:5: tag 'X-PER' is not O"),
    Case("tag-bare", "corpus", "tag PER", corpus(GOOD.replace("B-PER", "PER")), "train.txt:5: tag 'PER' is not O"),
    Case("i-after-o", "corpus", "I-X after O (refused)", corpus(GOOD.replace("B-MISC", "I-MISC")),
         "train.txt:3: I-MISC follows O"),
    Case("i-after-o-repair", "corpus", "I-X after O with --repair-bio (repaired)",
         lambda tmp: corpus(GOOD.replace("B-MISC", "I-MISC"))(tmp) + ["--repair-bio"], "", 0),
    Case("long-sentence", "corpus", "a 10,000-token sentence",
         corpus(GOOD + "\n" + "".join(f"w{i % 50} NN I-NP O\n" for i in range(10_000))), "", 0),
    Case("one-char", "corpus", "a 1-character corpus", corpus("a"), "found 1 column; expected at least 2"),
    # line handling
    Case("form-feed", "lines", "a form feed inside a token", corpus(GOOD.replace("rejects", "rej\x0cects")),
         "train.txt:2: control character U+000C"),
    Case("u2028", "lines", "U+2028 (line separator) inside a token", corpus(GOOD.replace("German", "Ger\u2028man")),
         "train.txt:3: control character U+2028"),
    Case("nel", "lines", "U+0085 (next line) inside a token", corpus(GOOD.replace("Peter", "Pe\x85ter")),
         "train.txt:5: control character U+0085"),
    Case("lone-cr", "lines", "a carriage return inside a line", corpus(GOOD.replace("EU NNP", "EU\rNNP")),
         "train.txt:1: a carriage return not followed by a line feed"),
    Case("nbsp-kept", "lines", "a non-breaking space inside a token (kept: 300 sentences stay 300)",
         _evaluate_file(_sentences(299) + _sentences(1, "Pe\u00a0ter")), "", 0, check=_check_300,
         shown='(stdout) "sentences": 300'),
    Case("decode-u2028", "lines", "decode: U+2028 in a plain-text line",
         _decode_text("Peter said\nAngela\u2028Merkel\n"), "in.txt:2: control character U+2028"),
    Case("decode-two-lines", "lines", "decode: two text lines give two output lines",
         _decode_text("Peter said\nAngela\u00a0Merkel spoke\n"), "", 0, check=_check_two_lines),
    # config values
    Case("unknown-key", "config", "unknown key", train_with("train.epoch=2"), "did you mean 'epochs'"),
    Case("wrong-type", "config", "wrong type", train_with("train.batch_size=ten"),
         "train.batch_size: expected an integer"),
    Case("negative-dropout", "config", "negative dropout", train_with("model.dropout=-0.5"),
         "model.dropout must be in [0, 1)"),
    Case("hidden-zero", "config", "hidden size 0", train_with("model.hidden=0"), "model.hidden must be > 0"),
    Case("lr-nan", "config", "train.lr = nan", train_with("train.lr=nan"), "train.lr: expected a finite number"),
    Case("lr-inf", "config", "train.lr = inf", train_with("train.lr=inf"), "train.lr: expected a finite number"),
    Case("l2-inf", "config", "train.l2 = inf", train_with("train.l2=inf"), "train.l2: expected a finite number"),
    Case("lr-string-nan", "config", "train.lr = \"NaN\" (a string)", train_with('train.lr="NaN"'),
         "train.lr: expected a finite number"),
    Case("seed-negative", "config", "train.seed = -1", train_with("train.seed=-1"), "train.seed must be >= 0"),
    Case("seed-huge", "config", "train.seed = 2**40", train_with(f"train.seed={2**40}"),
         "train.seed must be <= 4,294,967,295"),
    Case("features-abc", "config", "data.features = \"abc\"", train_with('data.features="abc"'),
         "data.features entry 'abc': expected a column number"),
    Case("threads-negative", "config", "--threads -1", lambda tmp: ["--threads", "-1", *train_args(tmp)],
         "--threads -1: expected a number in 1..1024"),
    Case("seeds-zero", "config", "study --seeds 0", lambda tmp: _study_args(tmp)[:6] + ["--seeds", "0"],
         "--seeds 0: expected a number in 1..1000"),
    Case("emb-dim", "config", "embedding dimension that disagrees with the file", train_with("embeddings.dim=50"),
         "embeddings.dim = 50 but"),
    Case("missing-config", "config", "missing config file", _missing_config, "no such config file"),
    Case("ncrfpp-layers", "config", "NCRF++ lstm_layer=two", _ncrfpp("lstm_layer=two\n"),
         "x.config:8: lstm_layer: expected a whole number >= 1, got 'two'"),
    Case("ncrfpp-feature", "config", "NCRF++ empty feature=", _ncrfpp("feature=\n"),
         "x.config:8: expected feature=[NAME] emb_size=N, got ''"),
    # embedding files
    Case("emb-lengths", "embeddings", "inconsistent vector lengths", embeddings("eu 1 2 3\npeter 1 2\n"),
         "emb.txt:2: vector of 'peter' has 2 values; expected 3"),
    Case("emb-header", "embeddings", "a word2vec header line", embeddings("2 3\neu 1 2 3\npeter 1 2 3\n"), "", 0),
    Case("emb-nonnumeric", "embeddings", "non-numeric values", embeddings("eu 1 x 3\n"),
         "emb.txt:1: non-numeric value"),
    Case("emb-duplicates", "embeddings", "duplicate words (the first vector is used)",
         embeddings("eu 1 2 3\neu 4 5 6\n"), "", 0),
    Case("emb-nan", "embeddings", "NaN in a vector", embeddings("eu 1 2 3\npeter 1 nan 3\n"),
         "emb.txt:2: the vector of 'peter' holds NaN or inf"),
    Case("emb-inf", "embeddings", "inf (or 1e999) in a vector", embeddings("eu 1 2 1e999\n"),
         "emb.txt:1: the vector of 'eu' holds NaN or inf"),
    Case("emb-not-gzip", "embeddings", "a .gz file that is not gzip", embeddings("eu 1 2 3\n", "emb.txt.gz"),
         "emb.txt.gz: cannot be read as a gzip file"),
    Case("emb-not-zip", "embeddings", "a .zip file that is not a zip archive", embeddings("eu 1 2 3\n", "emb.zip"),
         "emb.zip: cannot be read as a zip archive"),
    # run folders, identity and writers
    Case("ckpt-truncated", "run folder", "truncated checkpoint", trained(_truncate), "truncated or corrupted"),
    Case("ckpt-garbage", "run folder", "corrupted checkpoint", trained(_garbage), "truncated or corrupted"),
    Case("ckpt-config", "run folder", "a run's config.toml edited after training", trained(_other_config),
         "config.toml: differs from the file training wrote"),
    Case("ckpt-version", "run folder", "checkpoint from an incompatible version", trained(_old_version),
         "checkpoint format 0"),
    Case("run-missing", "run folder", "run folder missing files", trained(_missing_vocab, "analyze"),
         "missing vocab.json"),
    Case("train-other-config", "identity", "train into a folder holding a run of another config",
         lambda tmp: (_train(tmp), train_args(tmp, "model.hidden=12"))[1],
         "holds a run of another config or corpus (config.model.hidden: 16 -> 12)"),
    Case("study-changed-config", "identity", "study re-run into its folder with another --set",
         _study_changed, "hold runs of another config or corpus"),
    Case("study-rerun-changed", "identity", "the same with --rerun-changed (retrains the changed run)",
         _study_rerun_changed, "", 0, check=_check_retrained),
    Case("second-train", "writers", "a second `nerve train` into a folder another one is writing",
         _second_writer, "nerve train (pid", check=_no_partial_run),
    Case("second-analyze", "writers", "a second `nerve analyze` into a folder being analysed",
         _second_analysis, "nerve analyze (pid"),
    Case("analysis-killed", "identity", "compare an analysis folder left by kill -9 (no ablation.csv)",
         analysed(_interrupted_analysis(folder=True)), "analysis is incomplete"),
    Case("analysis-killed-run", "identity", "compare a run whose analysis was killed (re-analysed first)",
         analysed(_interrupted_analysis(folder=False)), "", 0, check=_check_reanalysed),
    Case("activations-copied", "identity", "an activations.npz copied in from another run",
         _copied_activations, "activations.npz: differs from the file the analysis wrote"),
    Case("analysis-stale", "identity", "plot the analysis of a run retrained since", _retrained_after_analysis,
         "analyses an earlier model"),
    Case("loss-not-finite", "numbers", "a loss that overflows (train.lr = 1e30)", _nan_loss,
         "the training loss is", check=_no_partial_run),
    Case("npz-truncated", "run folder", "a truncated activations.npz",
         analysed(_npz_compare(lambda p: p.write_bytes(p.read_bytes()[:100]))), "activations.npz: differs"),
    Case("npz-empty", "run folder", "an empty activations.npz", analysed(_npz_compare(lambda p: p.write_bytes(b""))),
         "activations.npz: differs"),
    # paths and file systems
    Case("train-out-file", "paths", "train --out is an existing file", _out_is_file("train"),
         "taken: is a file; expected a folder"),
    Case("analyze-out-file", "paths", "analyze --out is an existing file", _out_is_file("analyze"),
         "taken: is a file; expected a folder"),
    Case("compare-out-file", "paths", "compare --out is an existing file", _out_is_file("compare"),
         "taken: is a file; expected a folder"),
    Case("decode-out-folder", "paths", "decode --out is a folder", _decode_to_folder,
         "outdir: is a folder; expected a file path"),
    Case("read-only", "paths", "train into a read-only file system", _read_only,
         "cannot write (Read-only file system)", root=True),
    Case("disk-full", "paths", "train onto a full disk", _full_disk, "the disk is full", root=True,
         check=_check_nothing_half_written),
    # bounds
    Case("long-token", "bounds", "decode a 100,000-character token with a char CNN (reads its first 200 chars)",
         _long_token, "", 0),
    Case("nbest-huge", "bounds", "decode --nbest 100000", _decode_nbest(100_000),
         "--nbest 100000: expected a number in 1..100"),
    Case("draws-huge", "bounds", "analyze --random-draws 100000000", _analyze_with("--random-draws", "100000000"),
         "--random-draws 100000000: expected a number in 0..1,000"),
    Case("analyze-seed-negative", "bounds", "analyze --seed -1", _analyze_with("--seed", "-1"),
         "--seed -1: expected a number >= 0"),
    # found by a hostile review of the above
    Case("model-swapped-evaluate", "identity", "evaluate a run whose model.pt was copied from another run",
         _model_swapped("evaluate"), "model.pt: differs from the file training wrote"),
    Case("model-swapped-train", "identity", "re-run train on a finished run whose model.pt was replaced",
         _model_swapped("train"), "model.pt changed since training finished"),
    Case("model-swapped-study", "identity", "re-run a study after a run's model.pt was replaced",
         _study_model_swapped, "model.pt changed since training finished"),
    Case("unfinished-run", "identity", "evaluate (or analyze, compare, decode) a run that never finished",
         _unfinished, "not a finished run (no complete.json"),
    Case("finished-no-checkpoint", "identity", "train another config into a finished run without checkpoint.pt",
         _finished_without_checkpoint, "holds a run of another config or corpus (config.model.hidden: 16 -> 12)"),
    Case("rerun-changed-locked", "writers", "study --rerun-changed on a run folder another process is writing",
         _rerun_changed_while_training, "is writing in this folder", check=_check_run_kept),
    Case("decode-out-fifo", "paths", "decode --out a named pipe", _decode_to("fifo"),
         "out: is not a regular file (a device, pipe or socket)"),
    Case("decode-out-symlink", "paths", "decode --out a symbolic link (the link is kept, its target written)",
         _decode_to("symlink"), "", 0, check=_check_symlink_kept),
    Case("identity-damaged", "identity", "an identity.json edited into another shape", _damaged_identity,
         "holds files of another run but no readable identity.json"),
    Case("grid-collision", "config", "grid values that map to one folder name", _grid_collision,
         "would share the run folder"),
    Case("ablation-unrecorded", "identity", "plot an ablation.csv the analysis marker does not list",
         _unrecorded_ablation, "ablation.csv: not among the files the analysis recorded"),
    Case("ncrfpp-superscript", "config", "NCRF++ lstm_layer=\u00b2", _ncrfpp("lstm_layer=\u00b2\n"),
         "lstm_layer: expected a whole number >= 1"),
    Case("ncrfpp-lone-cr", "lines", "NCRF++ config with a lone carriage return",
         _ncrfpp("learning_rate=0.1\rdropout=0.9\n"),
         "x.config:8: a carriage return not followed by a line feed"),
    Case("emb-bom", "embeddings", "a byte-order mark before the first vector (the first word is kept)", _emb_bom,
         "", 0),
    Case("explore-keeps-user-files", "explorer", "explore --out a folder holding the user's data/report.js, run.js, "
         "results.js (kept)", _explore_into_users_folder, "", 0, check=_check_user_files_kept),
    Case("explore-foreign-index", "explorer", "explore --out a folder whose index.html the user wrote",
         _explore_over_users_page, "index.html: not written by `nerve explore`"),
    Case("explore-copied-study", "explorer", "explore a study copied with cp -r (reads the copy's analyses)",
         _explore_study_copy(False), "", 0, check=_check_reads_the_copy),
    Case("explore-moved-study", "explorer", "explore a study moved to another folder (the original is gone)",
         _explore_study_copy(True), "", 0, check=_check_reads_the_copy),
    Case("serve-host-unknown", "serve", "serve --host a name this machine does not have", _serve_unknown_host,
         "--host no-such-host.invalid: not an address or name of this machine"),
    # wave 3: one model is one run; options never ignored; a tag absent from the ranking split
    Case("study-grid-seed", "identity", "study --grid train.seed=1,2 (the study's seeds would override it)",
         _grid_seed, "--grid 'train.seed=1,2': train.seed cannot be a grid key", check=_check_no_study),
    Case("study-grid-same-config", "identity", "study --grid train.lr=0.1,0.10 (two cells, one config: one model twice)",
         _grid_same_config, "resolve to the same config", check=_check_no_study),
    Case("compare-one-analysis-thrice", "identity", "compare RUN RUN/analysis $PWD/RUN (one analysis three times)",
         _compare_one_analysis_thrice, "analyses of one model", check=_check_no_comparison),
    Case("compare-two-splits", "identity", "compare one model's analyses of test and dev",
         _compare_two_splits, "analyses of one model", check=_check_no_comparison),
    Case("compare-copied-run", "identity", "compare a run and its copy (cp -r)", _compare_copied_run,
         "analyses of one model", check=_check_no_comparison),
    Case("analyze-ablate-twice", "config", "analyze --methods sensitivity --ablate zero,zero",
         _analyze_with("--methods", "sensitivity", "--ablate", "zero,zero"), "--ablate zero,zero: zero is given twice"),
    Case("analyze-ablate-alone", "config", "analyze --ablate half without --methods",
         _analyze_with("--ablate", "half"), "--ablate half"),
    Case("analyze-rank-split-alone", "config", "analyze --rank-split /no/such/file without --methods",
         _analyze_with("--rank-split", "/no/such/file"), "--rank-split /no/such/file: only the --methods rank on it"),
    Case("rank-split-tag-absent", "analysis", "analyze --methods with a --rank-split file that has no MISC token "
         "(MISC is neither swept nor judged)", _rank_split_without_misc,
         "B-MISC, I-MISC: no token (gold tags) in the ranking split", 0, check=_check_misc_not_judged),
    Case("study-more-epochs", "identity", "a study re-run with a larger train.epochs (extends its runs, says so)",
         _study_more_epochs, "runs extended:", 0, check=_check_extension_recorded),
    Case("unseen-tag-line", "lines", "analyze a file whose 6th line (the 3rd token of its 2nd sentence) has a tag the model never saw",
         _unseen_tag, "eval.txt:6: tag 'B-FOO' was never seen in training"),
    Case("version", "package", "nerve --version", lambda tmp: ["--version"], "", 0, check=_check_version,
         shown="(stdout) nerve 0.1.0"),
]


def run_case(case: Case, tmp: Path) -> Result:
    """Set the case up under ``tmp``, run its command, and undo what the setup started."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        args = case.setup(tmp)
        res = cli(*args)
        _LAST["stdout"] = res.stdout
        if case.check is not None and res.returncode == case.code:
            case.check(tmp)
        return res
    finally:
        os.chdir(cwd)
        while _HOLDERS:
            p = _HOLDERS.pop()
            p.kill()
            p.wait()
        while _MOUNTS:
            _MOUNTS.pop().close()


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (root, in a namespace that allows it)."""
    import tempfile

    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        try:
            with tmpfs(Path(d) / "m", "1m"):
                return True
        except (subprocess.CalledProcessError, OSError):
            return False


def write_doc() -> None:
    import tempfile

    lines = ["# Reliability: bad input, faults and what the user sees", "",
             "Generated by `python tests/reliability_cases.py`; each row is a test in "
             "`tests/test_reliability.py::test_case[<id>]`, which runs the command through the CLI (`nerve.cli.main`) "
             "and checks the exit code, the message, that it is one line without a traceback or \"internal error\", "
             "and, where stated, what the command left behind. Exit code 2 = bad input or a fault; 0 = the input is "
             "read correctly.", "", RULES, "",
             "| group | case | exit | what the user sees (stderr: the last line, or for exit 0 the warning or note) | test id |", "|---|---|---|---|---|"]
    mount = can_mount()
    for case in CASES:
        if case.root and not mount:
            print(case.id, "skipped (needs root and tmpfs)", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            proc = run_case(case, Path(tmp))
        lines_err = proc.stderr.strip().splitlines() or [""]
        said = [ln for ln in lines_err if case.expect and case.expect in ln]
        last = (said[0] if said and case.code == 0 else lines_err[-1]).replace(tmp, "…").replace("|", "\\|")
        last = re.sub(r"pid \d+", "pid N", last.replace(str(ROOT), ".")) or case.shown
        last = re.sub(r"_tmp_tmp\w{8}_", "_tmp_…_", last)  # a temporary folder's name, made file-safe
        lines.append(f"| {case.group} | {case.what} | {proc.returncode} | `{last}` | `{case.id}` |")
        print(case.id, proc.returncode, f"{time.perf_counter() - t0:.1f}s", last, file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        lines += ["", *serve_table(Path(tmp))]
    (ROOT / "docs" / "RELIABILITY.md").write_text("\n".join(lines) + "\n" + EXTRA)


def serve_table(tmp: Path) -> list[str]:
    """The `nerve serve` section: every case of tests/serve_cases.py sent to a real server over a tiny run."""
    import json

    from tests.serve_cases import CASES as HTTP
    from tests.serve_cases import run_case as ask_case
    from tests.serve_cases import serving

    run = _analysed_run(tmp)
    lines = ["## `nerve serve`: other web pages and bad clients", "",
             "Each row is a test in `tests/explore/test_serve_guard.py::test_http_case[<id>]`: the request is sent "
             "to a real `nerve serve` on 127.0.0.1 (port 0) and must get this status and answer (JSON).", "",
             "| request | status | answer | test id |", "|---|---|---|---|"]
    with serving(run, run / "analysis") as (_, port):
        for case in HTTP:
            status, answer = ask_case(case, port)
            shown = answer.get("error") or (f"tokens: {json.dumps(answer['tokens'])}" if "tokens" in answer else
                                             json.dumps(answer))
            shown = shown.replace(f":{port}", ":PORT").replace("|", "\\|")
            lines.append(f"| {case.what} | {status} | `{shown}` | `{case.id}` |")
            print(case.id, status, shown, file=sys.stderr)
    return lines


RULES = """## Rules

- **Run identity.** A run folder records `identity.json` (fingerprint of the resolved config without data paths,
  the SHA-256 of each split file and of the embedding file, the nerve and checkpoint versions) before any other
  file, and `complete.json` (the same fingerprint and the SHA-256 of config, vocab, model and metrics) as its last
  write. An analysis folder records `complete.json` last with the SHA-256 of the run's model, vocab and config,
  of the split file, the analysis options, and of every file it wrote. Results are reused only when
  `complete.json` holds the expected fingerprint and every file it lists still has its recorded SHA-256;
  `compare` and `plot` check every file they read against it. `evaluate`, `decode`, `analyze` and `compare`
  read a run only when it is finished and its config, vocab and model are the files training wrote (the model's
  hash is that of the very bytes loaded, so an analysis never names a model it did not read).
  `nerve study` stops when a run folder holds a run of another config or corpus, or a finished run whose files
  changed (`--rerun-changed` retrains it, under the folder's lock); stale or incomplete analyses (derived data)
  are redone without asking. A marker of another shape than nerve writes counts as absent.
- **One writer per folder.** `train`, `analyze`, `compare` and `study` hold an OS lock (`flock` on
  `.nerve.lock`) on the folder they write; a second writer gets an error at once. The OS releases the lock
  when the holder dies, even by `kill -9`. Study workers die with the study (Linux `PR_SET_PDEATHSIG`, and a
  watchdog thread); with `--engine ray`, Ray's own handling of a lost driver applies, and a surviving task
  still cannot write into a folder a re-run holds.
- **Numbers.** Config numbers must be finite; embedding vectors must be finite float32 values; a non-finite
  training loss (or weights) stops training with the epoch and batch, keeps the last finished epoch's
  checkpoint and model, and exits 2.
- **Lines.** Every reader splits lines at `\\n` only (`\\r\\n` accepted) and columns at spaces and tabs only.
  Any other control character (C0/C1 controls, a lone `\\r`, U+2028, U+2029) is refused with its file and line;
  every other character, non-breaking spaces included, is part of its token.
- **Faults.** A full disk, a read-only file system or a missing permission is one line naming the path and the
  cause. Every file is written to a temporary file and renamed, so nothing is half-written; files get the mode
  the umask gives. A re-run after the fault resumes.
- **Bounds.** Character encoders read the first 200 characters of a word; `--nbest` and `train.nbest` ≤ 100;
  `--random-draws` ≤ 1,000; `train.seed` in 0..2³²−1; `--seeds` ≤ 1,000; `--threads` in 1..1024; layers ≤ 64.
- **Explorer and server.** `nerve explore` writes `index.html`, `data/index.js` and `data/rN.js`, records them in
  `.nerve-explorer.json`, removes only files recorded there and never overwrites a file it did not write (one an
  older nerve wrote is recognised by how it begins); it finds a study's runs in the study folder, even after the
  folder was copied or moved. `nerve serve` answers only requests whose
  Host names the address it listens on (and the loopback names on a loopback address), refuses a foreign Origin
  and a POST that is not `application/json`, answers a bad request with a 4xx JSON error, and logs a client that
  went away in one line."""

EXTRA = """
## Other guarantees and their tests

| guarantee | test |
|---|---|
| a study stores the paths inside its folder relative to it (`runs/base/seed1`); a moved study reads its own runs, never the original's | `tests/test_api.py::test_study_json_stores_the_paths_inside_the_study_relative_to_it`, `test_a_moved_study_reads_its_own_runs` |
| a study re-run says on stderr what it does to each run folder that held a run (resumed, extended by more epochs, retrained, reanalysed) and records every change, runs trained afresh too, in study.json's `changes` and the report's "What this invocation did"; a re-run that reuses everything says nothing | `tests/test_study.py::test_a_study_rerun_with_more_epochs_says_it_extends_the_runs_in_its_report_and_study_json` |
| a task Ray re-ran after its worker or node died is reported (`nerve study: 1 of 1 runs retried: … (started 2 times: …)`) and recorded; every start is a line of the run's `attempts.jsonl` | `tests/test_study.py::test_a_task_ray_ran_twice_is_reported_as_retried` |
| a Ray that nerve starts uses 127.0.0.1 as its node address (`--ray-node-ip` another); what Ray still listens on is in the README's Ray section | `tests/test_study.py::test_ray_is_started_with_the_node_address_asked_for` |
| `nerve analyze --methods` shows its progress on stderr: a bar for the methods' scoring (one step a method) and the sweeps' bars | `tests/test_method_stage.py::test_the_methods_stage_shows_its_progress_on_stderr` |
| a tag with no token in the ranking split has NaN method scores, no methods.csv rows as a target and no methods_summary.csv rows, and still counts among the other tags of a selectivity | `tests/test_method_stage.py::test_a_tag_absent_from_the_ranking_split_*` |
| `kill -9` mid-epoch, re-run the same command: resumes from the last epoch checkpoint and ends with the same metrics as an uninterrupted run | `tests/test_cli_train.py::test_kill_mid_epoch_then_rerun_ends_like_an_uninterrupted_run` |
| full disk during `train` and during `analyze` (tmpfs, root only): a one-line error, nothing half-written; after space is freed the same command resumes and ends with the metrics of an uninterrupted run | `tests/test_faults.py::test_full_disk_train_fails_cleanly_then_resumes_to_the_same_metrics`, `test_full_disk_analyze_fails_cleanly_then_finishes` |
| `kill -9` of `nerve study`: no worker outlives it by more than 5 s | `tests/test_faults.py::test_killed_study_leaves_no_worker_alive` |
| a run of a study fails (here a NaN loss): the other workers are stopped and the error is the one line printed | `tests/test_faults.py::test_a_failing_study_ends_with_its_one_line_error` |
| a study worker killed from outside (as by the out-of-memory killer): `nerve: error: a study worker died (killed from outside, or out of memory); re-run the same command to resume` | `tests/test_faults.py::test_a_worker_killed_from_outside_is_a_one_line_error` |
| two `nerve train` into one folder at once: one trains, the other stops at once; the folder holds one consistent run | `tests/test_faults.py::test_two_trains_into_one_folder_leave_one_consistent_run` |
| a non-finite loss in epoch 2 keeps epoch 1's model and checkpoint and exits 2 | `tests/test_faults.py::test_non_finite_loss_keeps_the_last_good_epoch` |
| outputs honour the umask (0644 under 022, 0664 under 002) | `tests/test_faults.py::test_outputs_honour_the_umask` |
| a training folder whose first epoch never finished starts over, even after the corpus is fixed | `tests/test_faults.py::test_a_run_that_never_finished_an_epoch_starts_over` |
| same seed, same `metrics.json` | `tests/test_cli_train.py::test_training_twice_with_one_seed_gives_identical_metrics` |
| same seed, same `sensitivity.csv` | `tests/test_reliability.py::test_same_seed_gives_identical_sensitivity` |
| a killed study re-runs only the missing runs | `tests/test_study.py::test_killed_study_reruns_only_the_missing_runs` |
| every output is written through a temporary file and a rename; a failing writer leaves no file | `tests/test_reliability.py::test_atomic_write_leaves_nothing_when_the_writer_fails` |
| decode: empty and whitespace-only lines, unknown words, output line count = input line count | `tests/test_cli_train.py::test_decode_plain_text_with_empty_and_unknown_lines` |
| fuzzing: the corpus reader, the config parser and the scheme converters raise only clear errors and keep their properties | `tests/test_reliability.py::test_reader_fuzz*`, `test_config_fuzz*`, `tests/data/test_schemes.py` |
| `nerve serve`: 50 clients that vanish mid-request (half of them mid-body, all closing with a reset): one log line each at most (`nerve serve: client 127.0.0.1:PORT went away before the answer was sent (ConnectionResetError)`), no traceback, and the next request is answered | `tests/explore/test_serve_guard.py::test_clients_that_vanish_mid_request_are_one_line_each_and_the_server_keeps_serving` |
| `nerve serve --host ::1` listens on IPv6 and answers `Host: [::1]:PORT` only (on a machine without IPv6: a one-line error naming `--host ::1`, not the port) | `tests/explore/test_serve_guard.py::test_host_ipv6_listens_on_ipv6_or_is_refused_as_such` |
| `nerve explore` removes only the files it recorded writing: a one-run explorer over a two-run one removes its own `data/r1.js` and keeps the user's files (even one named `data/r7.js`); an edited record cannot make it delete another file | `tests/explore/test_explore_writer.py::test_explore_keeps_the_users_own_files_and_removes_only_its_own`, `test_an_edited_record_cannot_make_explore_delete_other_files` |
| `nerve explore` shows a progress bar on stderr (runs, and each run's single-unit ablations) on a terminal; `--no-progress` turns it off | `tests/explore/test_explore_writer.py::test_explore_shows_progress_on_stderr` |
"""

if __name__ == "__main__":
    write_doc()
