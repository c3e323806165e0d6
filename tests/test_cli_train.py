"""End to end through the CLI on the tiny corpus: train, save, load in a fresh process, evaluate, decode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, TINY, TINY_CFG, run_cli


def test_train_writes_the_run_folder(tiny_run):
    for name in ("config.toml", "model.pt", "vocab.json", "metrics.json", "epochs.jsonl", "checkpoint.pt"):
        assert (tiny_run / name).is_file(), name
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert m["complete"] and len(m["epochs"]) == 2
    for split in ("dev", "test"):
        for key in ("f1", "precision", "recall", "accuracy"):
            assert 0.0 <= m[split][key] <= 1.0
        assert set(m[split]["per_tag_accuracy"]) >= {"B-PER", "I-PER", "O"}


def test_evaluate_json_matches_training_metrics(tiny_run):
    proc = run_cli("evaluate", tiny_run, "--split", "test", "--json", check=True)
    scores = json.loads(proc.stdout)
    best = json.loads((tiny_run / "metrics.json").read_text())["test"]
    assert abs(scores["f1"] - best["f1"]) < 1e-12 and abs(scores["accuracy"] - best["accuracy"]) < 1e-12


def test_decode_plain_text_with_empty_and_unknown_lines(tiny_run, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("John Smith visited Paris .\n\nZorblax Quxxor Flimflam\n   \nberlin\n" + "Paris " * 5000 + "\n")
    out = tmp_path / "out.txt"
    run_cli("decode", tiny_run, src, "--out", out, check=True)
    lines = out.read_text().split("\n")[:-1]
    assert len(lines) == 6 and len(lines[5].split()) == 5000
    assert lines[1] == "" and lines[3] == ""
    assert [t.rsplit("/", 1)[0] for t in lines[2].split()] == ["Zorblax", "Quxxor", "Flimflam"]
    assert all(t.rsplit("/", 1)[1] in {"B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC", "O"}
               for t in lines[0].split())


def test_decode_conll_appends_the_tag_column(tiny_run, tmp_path):
    out = tmp_path / "out.conll"
    run_cli("decode", tiny_run, TINY / "test.txt", "--out", out, check=True)
    rows = [line.split() for line in out.read_text().splitlines() if line.strip()]
    src = [line.split() for line in (TINY / "test.txt").read_text().splitlines() if line.strip()]
    assert len(rows) == len(src) and all(r[:-1] == s for r, s in zip(rows, src))


def test_decode_conll_output_is_line_aligned_with_its_input_docstart_and_blank_lines_kept(tiny_run, tmp_path):
    src = tmp_path / "in.conll"
    src.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n-DOCSTART- -X- -X- O\n\n"
                   "Peter NNP B-NP B-PER\n")
    out = tmp_path / "out.conll"
    run_cli("decode", tiny_run, src, "--out", out, check=True)
    lines_in, lines_out = src.read_text().splitlines(), out.read_text().splitlines()
    assert len(lines_out) == len(lines_in)
    for a, b in zip(lines_in, lines_out):
        assert (a == "") == (b == "") and b.split()[:-1] == a.split()
    assert lines_out[0] == "-DOCSTART- -X- -X- O O"


def test_training_twice_with_one_seed_gives_identical_metrics(tiny_run, tmp_path):
    out = tmp_path / "again"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", out, "--no-progress", check=True)
    a = _strip_timings(json.loads((tiny_run / "metrics.json").read_text()))
    b = _strip_timings(json.loads((out / "metrics.json").read_text()))
    assert a == b


def test_rerun_of_a_complete_run_resumes_without_training(tiny_run):
    before = (tiny_run / "metrics.json").read_text()
    proc = run_cli("train", TINY_CFG, "--data", TINY, "--out", tiny_run, "--no-progress", check=True)
    assert '"epoch"' not in proc.stdout
    assert json.loads((tiny_run / "metrics.json").read_text())["epochs"] == json.loads(before)["epochs"]


def _strip_timings(metrics: dict) -> dict:
    metrics.pop("train_seconds", None)
    for e in metrics["epochs"]:
        for k in ("train_seconds", "eval_seconds", "sentences_per_second"):
            e.pop(k)
    return metrics


@pytest.mark.parametrize("extra", [(), ("--set", "train.momentum=0.9", "--set", "train.word_dropout=0.5",
                                        "--set", "train.average_from=1")],
                         ids=["plain-sgd", "momentum-word-dropout-averaging"])
def test_kill_mid_epoch_then_rerun_ends_like_an_uninterrupted_run(tmp_path, extra):
    import subprocess
    import sys

    full, killed = tmp_path / "full", tmp_path / "killed"
    args = ["train", TINY_CFG, "--data", TINY, "--set", "train.epochs=3", "--no-progress", *extra]
    run_cli(*args, "--out", full, check=True)
    kill_at = Path(__file__).parent / "kill_at.py"  # SIGKILL after step 5 of epoch 2
    proc = subprocess.run([sys.executable, str(kill_at), "1", "5", *map(str, args), "--out", str(killed)],
                          capture_output=True, text=True)
    assert proc.returncode == -9
    assert not json.loads((killed / "metrics.json").read_text())["complete"]
    run_cli(*args, "--out", killed, check=True)
    a = _strip_timings(json.loads((full / "metrics.json").read_text()))
    b = _strip_timings(json.loads((killed / "metrics.json").read_text()))
    assert a == b


def test_ncrfpp_config_file_trains(tmp_path):
    from tests.test_config import write_ncrfpp

    cfg = write_ncrfpp(tmp_path, FIXTURES / "tiny")
    run_cli("train", cfg, "--no-progress", check=True)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["complete"] and len(m["epochs"]) == 2


def test_bad_config_key_is_one_line_without_traceback(tmp_path):
    proc = run_cli("train", TINY_CFG, "--data", TINY, "--out", tmp_path / "x", "--set", "train.epoch=3")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "did you mean 'epochs'" in proc.stderr


def test_train_finds_a_registered_corpus_by_name_through_nerve_data(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(TINY, tmp_path / "data" / "conll2003")
    monkeypatch.setenv("NERVE_DATA", str(tmp_path / "data"))
    run_cli("train", TINY_CFG, "--data", "conll2003", "--out", tmp_path / "run", "--set", "train.epochs=1",
            "--no-progress", check=True)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["complete"]


def test_decode_nbest_writes_scored_alternatives_best_first(tmp_path):
    run = tmp_path / "crf"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", run, "--set", "model.decoder=crf", "--set", "train.epochs=1",
            "--no-progress", check=True)
    src = tmp_path / "in.txt"
    src.write_text("John Smith visited Paris .\n\nberlin\n")
    out = tmp_path / "out.txt"
    run_cli("decode", run, src, "--out", out, "--nbest", "3", check=True)
    rows = [json.loads(line) for line in (tmp_path / "out.txt.nbest.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[1]["nbest"] == []
    first = rows[0]["nbest"]
    assert len(first) == 3 and [a["rank"] for a in first] == [1, 2, 3]
    assert first[0]["score"] >= first[1]["score"] >= first[2]["score"]
    best = [t.rsplit("/", 1)[1] for t in out.read_text().splitlines()[0].split()]
    assert first[0]["tags"] == best


def test_decode_nbest_on_a_softmax_model_is_a_one_line_error(tiny_run, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("John\n")
    proc = run_cli("decode", tiny_run, src, "--out", tmp_path / "o.txt", "--nbest", "2")
    assert proc.returncode == 2 and "CRF" in proc.stderr and "Traceback" not in proc.stderr


def test_checkpoint_without_momentum_state_is_a_one_line_error(tmp_path):
    import torch

    out = tmp_path / "run"
    args = ("train", TINY_CFG, "--data", TINY, "--set", "train.momentum=0.9", "--no-progress", "--out", out)
    run_cli(*args, "--set", "train.epochs=1", check=True)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    ckpt["row_sparse"] = None  # as written by nerve before row-sparse momentum
    torch.save(ckpt, out / "checkpoint.pt")
    proc = run_cli(*args, "--set", "train.epochs=1")
    assert proc.returncode == 2 and "optimiser state does not fit" in proc.stderr and "Traceback" not in proc.stderr


def test_extending_a_finished_run_equals_training_longer_from_scratch(tmp_path):
    longer, extended = tmp_path / "longer", tmp_path / "extended"
    args = ["train", TINY_CFG, "--data", TINY, "--no-progress", "--set", "train.momentum=0.9"]
    run_cli(*args, "--set", "train.epochs=3", "--out", longer, check=True)
    run_cli(*args, "--set", "train.epochs=2", "--out", extended, check=True)
    proc = run_cli(*args, "--set", "train.epochs=3", "--out", extended, check=True)
    assert "extending the run from 2 to 3 epochs" in proc.stderr
    a = _strip_timings(json.loads((longer / "metrics.json").read_text()))
    b = _strip_timings(json.loads((extended / "metrics.json").read_text()))
    assert a == b


def test_fewer_epochs_than_a_run_already_has_is_a_one_line_error(tiny_run):
    proc = run_cli("train", TINY_CFG, "--data", TINY, "--no-progress", "--set", "train.epochs=1", "--out", tiny_run)
    assert proc.returncode == 2 and "only train.epochs may grow" in proc.stderr and "Traceback" not in proc.stderr
