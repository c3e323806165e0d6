"""Every bad-input case of docs/RELIABILITY.md: how to set it up, the command, and what the user must see.

`python tests/reliability_cases.py` runs each case through the CLI and rewrites docs/RELIABILITY.md with the
messages actually printed; tests/test_reliability.py runs the same cases as tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
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


def train_with(*sets: str, cfg: Path = CFG) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        args = ["train", str(cfg), "--data", str(TINY), "--out", str(tmp / "run"), "--no-progress",
                "--set", "train.epochs=1"]
        for s in sets:
            args += ["--set", s]
        return args
    return setup


def embeddings(text: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / "emb.txt").write_text(text)
        return train_with(f'embeddings.source="{tmp / "emb.txt"}"', "embeddings.dim=3")(tmp)
    return setup


def trained(mutate: Callable[[Path], None], command: str = "evaluate") -> Callable[[Path], list[str]]:
    """Train a tiny run, damage it with ``mutate``, then run ``command`` on it."""
    def setup(tmp: Path) -> list[str]:
        run = tmp / "run"
        subprocess.run([sys.executable, "-m", "nerve.cli", *train_with()(tmp)], check=True,
                       capture_output=True)
        mutate(run)
        if command == "evaluate":
            return ["evaluate", str(run), "--split", "test"]
        return ["analyze", str(run), "--out", str(tmp / "analysis"), "--random-draws", "2"]
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


CASES = [
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
    Case("unknown-key", "config", "unknown key", train_with("train.epoch=2"), "did you mean 'epochs'"),
    Case("wrong-type", "config", "wrong type", train_with("train.batch_size=ten"),
         "train.batch_size: expected an integer"),
    Case("negative-dropout", "config", "negative dropout", train_with("model.dropout=-0.5"),
         "model.dropout must be in [0, 1)"),
    Case("hidden-zero", "config", "hidden size 0", train_with("model.hidden=0"), "model.hidden must be > 0"),
    Case("emb-dim", "config", "embedding dimension that disagrees with the file", train_with("embeddings.dim=50"),
         "embeddings.dim = 50 but"),
    Case("missing-config", "config", "missing config file", _missing_config, "no such config file"),
    Case("emb-lengths", "embeddings", "inconsistent vector lengths", embeddings("eu 1 2 3\npeter 1 2\n"),
         "emb.txt:2: vector of 'peter' has 2 values; expected 3"),
    Case("emb-header", "embeddings", "a word2vec header line", embeddings("2 3\neu 1 2 3\npeter 1 2 3\n"), "", 0),
    Case("emb-nonnumeric", "embeddings", "non-numeric values", embeddings("eu 1 x 3\n"),
         "emb.txt:1: non-numeric value"),
    Case("emb-duplicates", "embeddings", "duplicate words (the first vector is used)",
         embeddings("eu 1 2 3\neu 4 5 6\n"), "", 0),
    Case("ckpt-truncated", "run folder", "truncated checkpoint", trained(_truncate), "truncated or corrupted"),
    Case("ckpt-garbage", "run folder", "corrupted checkpoint", trained(_garbage), "truncated or corrupted"),
    Case("ckpt-config", "run folder", "checkpoint from a different config", trained(_other_config),
         "different model config"),
    Case("ckpt-version", "run folder", "checkpoint from an incompatible version", trained(_old_version),
         "checkpoint format 0"),
    Case("run-missing", "run folder", "run folder missing files", trained(_missing_vocab, "analyze"),
         "missing vocab.json"),
]


def run_case(case: Case, tmp: Path) -> subprocess.CompletedProcess:
    args = case.setup(tmp)
    return subprocess.run([sys.executable, "-m", "nerve.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


def write_doc() -> None:
    import tempfile

    lines = ["# Reliability: bad input and what the user sees", "",
             "Generated by `python tests/reliability_cases.py`; each row is a test in "
             "`tests/test_reliability.py::test_case[<id>]`, which checks the exit code, the message and that no "
             "traceback is printed. Exit code 2 = bad input; 0 = the input is read correctly.", "",
             "| group | case | exit | what the user sees (stderr, last line) | test id |", "|---|---|---|---|---|"]
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            proc = run_case(case, Path(tmp))
        last = (proc.stderr.strip().splitlines() or [""])[-1].replace(tmp, "…").replace("|", "\\|")
        lines.append(f"| {case.group} | {case.what} | {proc.returncode} | `{last}` | `{case.id}` |")
        print(case.id, proc.returncode, last, file=sys.stderr)
    (ROOT / "docs" / "RELIABILITY.md").write_text("\n".join(lines) + "\n" + EXTRA)


EXTRA = """
## Other guarantees and their tests

| guarantee | test |
|---|---|
| `kill -9` mid-epoch, re-run the same command: resumes from the last epoch checkpoint and ends with the same metrics as an uninterrupted run | `tests/test_cli_train.py::test_kill_mid_epoch_then_rerun_ends_like_an_uninterrupted_run` |
| same seed, same `metrics.json` | `tests/test_cli_train.py::test_training_twice_with_one_seed_gives_identical_metrics` |
| same seed, same `sensitivity.csv` | `tests/test_reliability.py::test_same_seed_gives_identical_sensitivity` |
| a killed study re-runs only the missing runs | `tests/test_study.py::test_killed_study_reruns_only_the_missing_runs` |
| every output is written through a temporary file and a rename; a failing writer leaves no file | `tests/test_reliability.py::test_atomic_write_leaves_nothing_when_the_writer_fails` |
| decode: empty and whitespace-only lines, unknown words, output line count = input line count | `tests/test_cli_train.py::test_decode_plain_text_with_empty_and_unknown_lines` |
| fuzzing: the corpus reader, the config parser and the scheme converters raise only clear errors | `tests/test_reliability.py::test_reader_fuzz*`, `test_config_fuzz*`, `tests/data/test_schemes.py` |
"""

if __name__ == "__main__":
    write_doc()
