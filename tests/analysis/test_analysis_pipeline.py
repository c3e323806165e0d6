"""Tests for nerve.analysis.pipeline: the files of one analysis and the argument checks."""

import csv
import json

import numpy as np
import pytest
from analysis_synthetic import make_arrays

from nerve.analysis.core import AnalysisSpec
from nerve.analysis.pipeline import load_activations
from nerve.analyze import analyze_arrays
from nerve.errors import NerveError

TABLES = ["sensitivity.csv", "sensitivity.npy", "ranking.tsv", "ranking.txt", "per_tag_accuracy.json",
          "ablation.csv", "ablation_summary.csv"]
FIGURES = ["sensitivity_heatmap", "ranking_table", "ablation_grid", "per_tag_accuracy"] + [
    f"ablation_{t}" for t in ("B-LOC", "B-PER", "I-LOC", "I-PER", "O")]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis") / "nested" / "out"
    summary = analyze_arrays(make_arrays(n_tokens=150, n=6), out, AnalysisSpec(max_k=4, random_draws=3), progress=False)
    return out, summary


def test_pipeline_writes_every_file(analysed):
    out, summary = analysed
    for name in TABLES + [f"{f}.{ext}" for f in FIGURES for ext in ("png", "svg")]:
        assert (out / name).stat().st_size > 0, name
    assert sorted(summary["files"] + ["complete.json"]) == sorted(p.name for p in out.iterdir())


def test_no_temporary_files_left_behind(analysed):
    out, _ = analysed
    assert not [p for p in out.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


def test_sensitivity_csv_has_neuron_then_tags_header_and_a_row_per_unit(analysed):
    out, _ = analysed
    rows = list(csv.reader((out / "sensitivity.csv").read_text().splitlines()))
    assert rows[0] == ["neuron", "B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    assert [r[0] for r in rows[1:]] == [f"u{i}" for i in range(6)]
    np.testing.assert_allclose(np.array(rows[1:])[:, 1:].astype(float), np.load(out / "sensitivity.npy"), rtol=1e-8)


def test_ablation_csv_header_and_summary_at_k_capped_by_max_k(analysed):
    out, summary = analysed
    header = "target_tag,selection,k,draw,eval_tag,accuracy,precision,recall,f1\n"
    assert (out / "ablation.csv").read_text().startswith(header)
    rows = list(csv.DictReader((out / "ablation_summary.csv").read_text().splitlines()))
    assert [r["target_tag"] for r in rows] == ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    assert {r["k"] for r in rows} == {"4"} and summary["summary_k"] == 4


def test_per_tag_accuracy_json_has_tags_all_and_entity_scores(analysed):
    out, _ = analysed
    acc = json.loads((out / "per_tag_accuracy.json").read_text())
    assert set(acc["per_tag"]) == {"B-LOC", "B-PER", "I-LOC", "I-PER", "O"}
    assert {"ALL", "F1", "precision", "recall", "support"} <= acc.keys()


def test_crf_archive_loaded_from_npz_is_analysed(tmp_path):
    np.savez(tmp_path / "activations.npz", **make_arrays(n_tokens=60, n=4, tags=["B-PER", "I-PER", "O"], decoder="crf"))
    summary = analyze_arrays(load_activations(tmp_path / "activations.npz"), tmp_path / "out",
                             AnalysisSpec(max_k=2, random_draws=2), progress=False)
    assert summary["decoder"] == "crf" and (tmp_path / "out" / "ablation.csv").is_file()


def test_max_k_larger_than_units_raises(tmp_path):
    with pytest.raises(NerveError, match=r"--max-k 9: the model has 8 units; expected 0\.\.8"):
        analyze_arrays(make_arrays(), tmp_path, AnalysisSpec(max_k=9), progress=False)


def test_negative_max_k_is_refused_by_the_spec():
    with pytest.raises(NerveError, match="--max-k -1: expected a number >= 0"):
        AnalysisSpec(max_k=-1)


@pytest.mark.parametrize("key, value, message", [
    ("W", np.zeros((5, 7), np.float32), "W: expected shape"),
    ("gold", np.full(200, 5), r"gold: expected tag ids in \[0, 5\)"),
    ("pred", np.zeros(199, int), r"pred: expected shape \(200,\)"),
    ("neurons", np.array(["a"]), "neurons: expected 8 unit names"),
    ("decoder", np.array("lstm"), "decoder: expected one of"),
])
def test_inconsistent_arrays_raise(tmp_path, key, value, message):
    arrays = make_arrays()
    arrays[key] = value
    with pytest.raises(ValueError, match=message):
        analyze_arrays(arrays, tmp_path, AnalysisSpec(), progress=False)


def test_an_analysis_of_an_older_format_has_another_fingerprint(monkeypatch, tmp_path):
    from nerve.analysis import capture
    from nerve.folder import fingerprint

    split = tmp_path / "dev.txt"
    split.write_text("EU B-ORG\n")
    from nerve.run import CONFIG, MODEL, VOCAB

    hashes = {CONFIG: "c", VOCAB: "v", MODEL: "m"}
    now = fingerprint(capture.analysis_identity(hashes, str(split), "dev", {}))
    monkeypatch.setattr(capture, "ANALYSIS_FORMAT", capture.ANALYSIS_FORMAT - 1)
    assert fingerprint(capture.analysis_identity(hashes, str(split), "dev", {})) != now
