"""Command-line input and output: decode from standard input and to standard output, a reader that goes away,
split names, and the n-best default a run's config gives decode."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import TINY, run_cli

SENTENCES = "EU rejects German call\n\nPeter Blackburn\n"


def _fresh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nerve.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def test_decode_reads_standard_input_and_writes_standard_output(tiny_run):
    proc = _fresh("decode", tiny_run, "-", "--out", "-", "--format", "text", input=SENTENCES)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == "" and [t.split("/")[0] for t in lines[2].split()] == ["Peter",
                                                                                                  "Blackburn"]
    assert "-> standard output" in proc.stderr


def test_decode_from_standard_input_equals_decoding_the_file(tiny_run, tmp_path):
    (tmp_path / "in.txt").write_text(SENTENCES)
    run_cli("decode", tiny_run, tmp_path / "in.txt", "--out", tmp_path / "file.out", check=True)
    proc = _fresh("decode", tiny_run, "-", "--out", tmp_path / "stdin.out", input=SENTENCES)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "stdin.out").read_text() == (tmp_path / "file.out").read_text()


def test_decode_errors_in_standard_input_name_stdin(tiny_run):
    proc = _fresh("decode", tiny_run, "-", "--out", "-", input="EU\x07rejects\n")
    assert proc.returncode == 2 and proc.stderr.startswith("nerve: error: <stdin>:1:")


def test_decode_without_input_or_out_says_what_to_give(tiny_run):
    proc = run_cli("decode", tiny_run)
    assert proc.returncode == 2 and "give the input file (- for standard input) and --out" in proc.stderr


def test_a_reader_that_goes_away_ends_the_output_quietly(tiny_run):
    proc = subprocess.Popen([sys.executable, "-m", "nerve.cli", "evaluate", str(tiny_run), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # `| head` that has already exited
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0
    assert "Traceback" not in err and "error" not in err and "Exception ignored" not in err


def test_a_reader_that_goes_away_in_a_shell_pipe_ends_quietly(tiny_run):
    proc = subprocess.run(f"{sys.executable} -m nerve.cli evaluate {tiny_run} --json | head -c 5", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout == "{\n  \"" and proc.stderr == ""


def test_split_valid_suggests_dev(tiny_run):
    proc = run_cli("evaluate", tiny_run, "--split", "valid")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("nerve: error: --split valid: expected dev, test, train or a CoNLL file path; "
                                   "no such split or file (did you mean --split dev?)")


def test_split_that_is_a_file_path_is_read(tiny_run):
    proc = run_cli("evaluate", tiny_run, "--split", TINY / "valid.txt")
    assert proc.returncode == 0 and "valid.txt" in proc.stdout


def test_decode_takes_the_nbest_of_the_runs_config_when_not_given(tmp_path):
    from tests.conftest import TINY_CFG

    run = tmp_path / "crf"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", run, "--no-progress", "--set", "model.decoder=crf",
            "--set", "train.nbest=3", "--set", "train.epochs=1", check=True)
    run_cli("decode", run, TINY / "test.txt", "--out", tmp_path / "out.conll", check=True)
    import json

    rows = [json.loads(line) for line in (tmp_path / "out.conll.nbest.jsonl").read_text().splitlines()]
    assert all([a["rank"] for a in r["nbest"]] == [1, 2, 3] for r in rows if r["words"])
