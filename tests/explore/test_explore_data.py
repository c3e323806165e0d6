"""The explorer's data: what the page shows of a run is what the analysis files and numpy say."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from nerve.analysis.matching import assign_units
from nerve.analysis.pipeline import load_activations
from nerve.data.conll import read_conll
from nerve.errors import NerveError
from nerve.explore import explorer_files, explorer_link, write_explorer
from nerve.explore.data import quantise, run_payload
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def payload(tiny_analysis):
    return run_payload(tiny_analysis)


def test_payload_matches_the_activations_archive(payload, tiny_analysis):
    a = load_activations(tiny_analysis / "activations.npz")
    assert payload["units"] == [str(u) for u in a["neurons"]] and payload["tags"] == [str(t) for t in a["tags"]]
    h = a["h"].astype(np.float64)
    for u in range(h.shape[1]):
        k = len(payload["top"][u])
        assert np.allclose(payload["top_values"][u], np.sort(h[:, u])[::-1][:k], atol=1e-4)
        assert np.allclose(payload["bottom_values"][u], np.sort(h[:, u])[:k], atol=1e-4)
        assert np.allclose(h[payload["top"][u], u], payload["top_values"][u], atol=1e-4)
        counts = np.array(payload["hist_counts"][u])
        assert counts.sum() == len(h)
        assert np.array_equal(counts.sum(axis=1), np.bincount(a["pred"], minlength=len(a["tags"])))
    q = np.frombuffer(base64.b64decode(payload["act_q"]), dtype=np.int8).reshape(h.shape)
    scale = np.array(payload["act_scale"])
    assert np.abs(q * scale / 127 - h).max() <= scale.max() / 254 + 1e-6
    assert payload["gold"] == a["gold"].tolist() and payload["pred"] == a["pred"].tolist()
    s = np.array(payload["sensitivity"], dtype=float)
    assert np.allclose(s, np.load(tiny_analysis / "sensitivity.npy"), atol=1e-4, equal_nan=True)


def test_words_are_the_split_in_token_order(payload, tiny_analysis):
    info = json.loads((tiny_analysis / "analysis.json").read_text())
    words = [w for s in read_conll(info["split"]) for w in s.words]
    assert payload["words"] == words and len(words) == payload["n_tokens"]


def test_single_unit_ablation_is_the_argmax_without_that_unit(payload, tiny_analysis):
    a = load_activations(tiny_analysis / "activations.npz")
    h, W, b, gold = a["h"].astype(np.float64), a["W"].astype(np.float64), a["b"].astype(np.float64), a["gold"]
    assert np.array_equal(np.argmax(h @ W.T + b, axis=1), a["pred"])
    for u in range(h.shape[1]):
        hu = h.copy()
        hu[:, u] = 0
        pred = np.argmax(hu @ W.T + b, axis=1)
        for j in range(len(a["tags"])):
            want = np.mean(pred[gold == j] == j) if np.any(gold == j) else None
            got = payload["single_ablation"][u][j]
            assert (got is None and want is None) or abs(got - want) < 1e-4


def test_methods_rankings_and_ablation_curves_are_carried(payload, tiny_analysis):
    z = np.load(tiny_analysis / "methods_scores.npz")
    assert payload["methods"]["names"] == [str(m) for m in z["methods"]]
    assert np.array_equal(payload["methods"]["rankings"], z["rankings"])
    tag = payload["tags"][-1]
    curve = payload["curves"][tag]
    assert curve["k"] == list(range(5)) and curve["top"][0] == curve["bottom"][0]


def test_quantise_keeps_sign_and_bounds_the_error():
    h = np.array([[0.5, -2.0, 0.0], [-0.25, 1.0, 0.0]], dtype=np.float32)
    q, scale = quantise(h)
    assert q.dtype == np.int8 and np.array_equal(np.sign(q), np.sign(h)) and scale[2] == 1.0
    assert np.abs(q * scale / 127 - h).max() <= scale.max() / 254


def test_study_matching_is_the_hungarian_matching(tiny_study):
    files = explorer_files(tiny_study)
    manifest = json.loads(files["data/index.js"].split("=", 1)[1].strip().rstrip(";"))
    assert [r["name"] for r in manifest["runs"]] == ["seed1", "seed2"]
    s = [np.load(tiny_study / "runs" / "base" / f"seed{i}" / "analysis" / "sensitivity.npy") for i in (1, 2)]
    rows, cols, _ = assign_units(s[0], s[1])
    study = manifest["study"]
    assert study["match"]["r0"]["r1"]["unit"] == [int(c) for _, c in sorted(zip(rows, cols))]
    assert sorted(study["match"]["r1"]["r0"]["unit"]) == list(range(len(rows)))


def test_explore_command_writes_a_page_that_opens_from_a_folder(tiny_analysis, tmp_path):
    proc = run_cli("explore", tiny_analysis, "--out", tmp_path / "ex", check=True)
    assert "index.html" in proc.stderr
    html = (tmp_path / "ex" / "index.html").read_text()
    assert '<script src="data/index.js"></script>' in html and "http" not in html.split("<body>")[1].lower()
    assert (tmp_path / "ex" / "data" / "r0.js").read_text().startswith("window.nerveRunLoaded(")


def test_explorer_link_is_relative_to_the_report(tiny_study):
    assert explorer_link(tiny_study) is None
    write_explorer(tiny_study, tiny_study / "explore")
    assert explorer_link(tiny_study) == "explore/index.html"
    assert explorer_link(tiny_study, tiny_study / "sub") == "../explore/index.html"


def test_a_modified_analysis_or_a_folder_without_one_is_a_one_line_error(tiny_analysis, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_analysis, copy)
    with open(copy / "sensitivity.csv", "a") as f:
        f.write("\n")
    with pytest.raises(NerveError, match="sensitivity.csv"):
        run_payload(copy)
    proc = run_cli("explore", tmp_path, "--out", tmp_path / "ex")
    assert proc.returncode == 2 and "no analysis here" in proc.stderr and "Traceback" not in proc.stderr
