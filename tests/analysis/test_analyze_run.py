"""`nerve analyze` on trained models: files, pred == the model's decode, and ablation.csv == full model re-runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerve.analysis.ablation import random_orders
from nerve.data.conll import read_conll
from nerve.data.prepare import encode_split
from nerve.model.hooks import ablate
from nerve.run import load_run, predict
from tests.analysis.analysis_synthetic import reference_scores
from tests.conftest import TINY, TINY_CFG, run_cli


def _analyze(run: Path, out: Path, *extra: str) -> Path:
    run_cli("analyze", run, "--split", "dev", "--random-draws", "3", "--out", out, *extra, check=True)
    return out


@pytest.fixture(scope="module")
def tiny_analysis(tiny_run, tmp_path_factory) -> Path:
    """One analysis of the tiny run, shared by the tests of this module that only read it."""
    return _analyze(tiny_run, tmp_path_factory.mktemp("analysis") / "a")


@pytest.fixture(scope="module")
def crf_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "crf"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", out, "--no-progress", "--set", "model.decoder=crf",
            "--set", "model.bidirectional=true", "--set", "model.hidden=12", check=True)
    return out


def _rerun_rows(run_dir: Path, analysis: Path, draws: int = 3) -> tuple[list[dict], dict]:
    """Every ablation.csv row recomputed by a full forward pass with the units zeroed through the hook."""
    run = load_run(run_dir)
    sents = read_conll(run.cfg.data.dev)
    enc = run.indexer()
    items = encode_split(enc, sents, run.cfg.data.dev)
    extra = enc.extra_vectors()
    tags = run.vocabs.tags.itos
    gold = [s.tags for s in sents]
    ranking = {}
    for row in csv.DictReader((analysis / "ranking.tsv").open(), delimiter="\t"):
        ranking.setdefault(row["tag"], []).append(run.model.unit_names().index(row["neuron"]))
    n = run.model.n_units
    rand = random_orders(n, draws, 0)
    rows = list(csv.DictReader((analysis / "ablation.csv").open()))
    starts = np.cumsum([0] + [len(s) for s in gold[:-1]])
    cache: dict[tuple, dict] = {}
    for row in rows:
        k, sel, target = int(row["k"]), row["selection"], row["target_tag"]
        units = {"top": ranking[target][:k], "bottom": ranking[target][::-1][:k],
                 "random": list(rand[int(row["draw"])][:k])}[sel]
        key = tuple(sorted(units))
        if key not in cache:
            with ablate(run.model, units):
                pred = predict(run.model, items, extra)
            flat_g = [tags.index(t) for sent in gold for t in sent]
            flat_p = [int(i) for p in pred for i in p]
            scores = reference_scores(flat_g, flat_p, tags, starts)
            cache[key] = scores
        row["expected"] = cache[key][row["eval_tag"]]
    return rows, cache


def _assert_rows_equal(rows):
    assert rows
    for row in rows:
        got = [float(row[f]) for f in ("accuracy", "precision", "recall", "f1")]
        np.testing.assert_allclose(got, np.asarray(row["expected"], dtype=float), atol=1e-9, err_msg=str(row))


def test_analyze_writes_every_output(tiny_run, tiny_analysis):
    out = tiny_analysis
    for name in ("activations.npz", "sensitivity.csv", "sensitivity.npy", "ranking.tsv", "ranking.txt",
                 "per_tag_accuracy.json", "ablation.csv", "sensitivity_heatmap.png", "sensitivity_heatmap.svg",
                 "ranking_table.png", "ablation_grid.png", "per_tag_accuracy.png", "ablation_B-PER.png"):
        assert (out / name).is_file(), name
    header = (out / "ablation.csv").read_text().splitlines()[0]
    assert header == "target_tag,selection,k,draw,eval_tag,accuracy,precision,recall,f1"


def test_activations_pred_equals_the_models_decode(tiny_run, tiny_analysis):
    out = tiny_analysis
    arr = np.load(out / "activations.npz")
    run = load_run(tiny_run)
    sents = read_conll(run.cfg.data.dev)
    enc = run.indexer()
    pred = predict(run.model, encode_split(enc, sents, run.cfg.data.dev), enc.extra_vectors())
    assert np.array_equal(arr["pred"], np.concatenate(pred))
    assert list(arr["tags"]) == run.vocabs.tags.itos and arr["h"].shape == (len(arr["gold"]), 16)
    torch.testing.assert_close(torch.from_numpy(arr["W"]), run.model.hidden2tag.weight.detach())


def test_softmax_ablation_csv_equals_full_reruns_through_the_hook(tiny_run, tiny_analysis):
    out = tiny_analysis
    rows, _ = _rerun_rows(tiny_run, out)
    _assert_rows_equal(rows)


def test_crf_ablation_csv_equals_full_viterbi_reruns_through_the_hook(crf_run, tmp_path):
    out = _analyze(crf_run, tmp_path / "a", "--max-k", "6", "--no-figures")
    rows, _ = _rerun_rows(crf_run, out)
    _assert_rows_equal(rows)
    assert json.loads((out / "analysis.json").read_text())["decoder"] == "crf"


@pytest.mark.parametrize("overrides", [["model.encoder=gru"], ["model.encoder=cnn", "model.layers=2"],
                                       ["model.encoder=lstm", "model.bidirectional=true", "model.char=cnn"]],
                         ids=["gru", "cnn", "bilstm-char"])
def test_analyze_works_for_other_encoders(tmp_path, overrides):
    run = tmp_path / "run"
    sets = [x for o in overrides for x in ("--set", o)]
    run_cli("train", TINY_CFG, "--data", TINY, "--out", run, "--no-progress", "--set", "train.epochs=1", *sets,
            check=True)
    out = _analyze(run, tmp_path / "a", "--max-k", "4", "--no-figures")
    names = [line.split(",")[0] for line in (out / "sensitivity.csv").read_text().splitlines()[1:]]
    assert len(names) == 16
    if "bidirectional" in " ".join(overrides):
        assert names[0] == "f0" and names[8] == "b0"


def test_max_k_larger_than_units_is_a_one_line_error(tiny_run, tmp_path):
    proc = run_cli("analyze", tiny_run, "--max-k", "99", "--out", tmp_path / "a")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "16 units" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_run_folder_without_model_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_cli("analyze", tmp_path / "empty", "--out", tmp_path / "a")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "missing" in proc.stderr


def test_split_with_unseen_tags_is_a_one_line_error(tiny_run, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Paris B-CITY\nis O\n")
    proc = run_cli("analyze", tiny_run, "--split", bad, "--out", tmp_path / "a")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bad.txt:1" in proc.stderr and "B-CITY" in proc.stderr


def test_plot_ablation_overlays_runs_given_run_or_analysis_folders(tiny_run, tiny_analysis, tmp_path):
    import shutil

    run = tmp_path / "run"  # a run folder holding its analysis in analysis/
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("analysis"))
    shutil.copytree(tiny_analysis, run / "analysis")
    fig = tmp_path / "overlay.png"  # without a suffix, every format: overlay.png, .svg and .pdf
    proc = run_cli("plot", "ablation", run, tiny_analysis, "--tag", "B-PER", "--labels", "run folder,analysis folder",
                   "--out", tmp_path / "overlay", check=True)
    assert fig.stat().st_size > 1000 and fig.with_suffix(".svg").is_file() and fig.with_suffix(".pdf").is_file()
    assert str(fig) in proc.stderr
    svg = fig.with_suffix(".svg").read_text()
    assert "run folder: top" in svg and "analysis folder: top" in svg


def test_plot_ablation_without_analysis_is_a_one_line_error(tmp_path):
    proc = run_cli("plot", "ablation", tmp_path, "--tag", "B-PER", "--out", tmp_path / "x.png")
    assert proc.returncode == 2 and "no ablation.csv" in proc.stderr and "Traceback" not in proc.stderr


def test_plot_ablation_to_a_pdf_writes_that_pdf_alone(tiny_analysis, tmp_path):
    fig = tmp_path / "fig.pdf"
    proc = run_cli("plot", "ablation", tiny_analysis, "--tag", "B-PER", "--out", fig, check=True)
    assert fig.read_bytes().startswith(b"%PDF") and sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf"]
    assert proc.stderr.strip() == f"wrote {fig}"


def test_plot_ablation_to_an_unknown_suffix_is_a_one_line_error(tiny_analysis, tmp_path):
    proc = run_cli("plot", "ablation", tiny_analysis, "--tag", "B-PER", "--out", tmp_path / "fig.jpeg")
    assert proc.returncode == 2 and "expected a .png, .svg or .pdf file name" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_analyze_formats_pdf_draws_every_figure_as_a_pdf_alone(tiny_run, tmp_path):
    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--max-k", "2", "--random-draws", "1", "--formats", "pdf", "--out", out, check=True)
    drawn = [p for p in out.iterdir() if p.suffix in (".png", ".svg", ".pdf")]
    assert len(drawn) >= 5 and {p.suffix for p in drawn} == {".pdf"}
    assert all(p.read_bytes().startswith(b"%PDF") for p in drawn)


def test_analyze_refuses_formats_with_no_figures(tiny_run, tmp_path):
    res = run_cli("analyze", tiny_run, "--no-figures", "--formats", "pdf", "--out", tmp_path / "a")
    assert res.returncode == 2 and "--formats pdf: --no-figures draws no figure" in res.stderr
    assert not (tmp_path / "a").exists()
