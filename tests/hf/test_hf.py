"""Fine-tuned Hugging Face taggers (nerve.hf) against plain transformers: a tiny BERT made in the test, fine-tuned a
few steps on the tiny corpus."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from nerve.data.prepare import resolve_data
from nerve.hf.config import hf_config
from nerve.hf.run import load_hf_run
from nerve.hf.train import fine_tune
from nerve.run import read_split
from tests.conftest import TINY, run_cli
from tests.hf.conftest import RECIPE, TAGS, plain_model, tune
from tests.hf.tiny_bert import make_tiny_bert


def _first_subtokens(tokenizer, words: list[str]) -> tuple[dict, list[int]]:
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    ids = enc.word_ids(0)
    return enc, [ids.index(w) for w in range(len(words))]


def test_the_head_takes_the_token_classifier_s_labels_in_its_order(tuned):
    assert load_hf_run(tuned).tags == list(reversed(TAGS))


def test_predictions_equal_a_plain_transformers_forward_pass(tuned):
    run = load_hf_run(tuned)
    path, sents = read_split(run, "test")
    arrays, words = run.capture(sents, path)
    plain, tok = plain_model(tuned)
    expected = []
    with torch.no_grad():
        for ws in words:
            enc, first = _first_subtokens(tok, ws)
            expected.append(plain(**enc).logits[0, first].argmax(-1).numpy())
    np.testing.assert_array_equal(arrays["pred"], np.concatenate(expected))


@pytest.mark.parametrize("site", ["layer1", "ffn2", "classifier_in"])
def test_word_level_activations_equal_a_hand_gather_of_first_subtokens(tuned, site):
    run = load_hf_run(tuned)
    path, sents = read_split(run, "dev")
    arrays, words = run.capture(sents, path, site)
    plain, tok = plain_model(tuned)
    module = {"layer1": plain.bert.encoder.layer[0], "ffn2": plain.bert.encoder.layer[1].intermediate,
              "classifier_in": plain.bert.encoder.layer[-1]}[site]
    seen = []
    handle = module.register_forward_hook(lambda m, i, out: seen.append(out[0] if isinstance(out, tuple) else out))
    rows = []
    try:
        with torch.no_grad():
            for ws in words:
                enc, first = _first_subtokens(tok, ws)
                seen.clear()
                plain(**enc)
                rows.append(seen[0][0, first].numpy())
    finally:
        handle.remove()
    np.testing.assert_allclose(arrays["h"], np.concatenate(rows), rtol=1e-5, atol=1e-5)


def test_mean_pooling_reads_the_mean_of_a_word_s_subtokens(tuned, tmp_path):
    run = load_hf_run(tuned)
    run.model.cfg.pooling = "mean"
    path, sents = read_split(run, "dev")
    arrays, words = run.capture(sents, path, "layer2")
    _, tok = plain_model(tuned)
    outer = []
    hook = run.model.encoder.encoder.layer[1].register_forward_hook(lambda m, i, out: outer.append(
        out[0] if isinstance(out, tuple) else out))
    rows = []
    try:
        with torch.no_grad():
            for ws in words[:5]:
                enc = tok(ws, is_split_into_words=True, return_tensors="pt")
                outer.clear()
                run.model.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
                ids = np.array([-1 if w is None else w for w in enc.word_ids(0)])
                rows += [outer[0][0, ids == w].mean(0).numpy() for w in range(len(ws))]
    finally:
        hook.remove()
    assert any(len(tok(w, add_special_tokens=False)["input_ids"]) > 1 for ws in words[:5] for w in ws)
    np.testing.assert_allclose(arrays["h"][: len(rows)], np.stack(rows), rtol=1e-5, atol=1e-5)


def test_an_intervention_at_an_ffn_site_equals_editing_the_module_output_in_a_plain_hook(tuned):
    run = load_hf_run(tuned)
    path, sents = read_split(run, "test")
    units = [3, 17, 40]
    plain, tok = plain_model(tuned)
    words = [s.words for s in sents]

    def zero(values):
        values = values.clone()
        values[:, units] = 0.0
        return values

    with run.model.edit_words("ffn1", zero):
        edited, _ = run.capture(sents, path, "classifier_in")
    ours = edited["h"] @ edited["W"].T + edited["b"]
    expected, first = [], []

    def hook(module, inputs, out):
        out = out.clone()
        out[0, first[0], :] = out[0, first[0], :].index_fill(-1, torch.tensor(units), 0.0)
        return out

    handle = plain.bert.encoder.layer[0].intermediate.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for ws in words:
                enc, f = _first_subtokens(tok, ws)
                first[:] = [f]
                expected.append(plain(**enc).logits[0, f].numpy())
    finally:
        handle.remove()
    np.testing.assert_allclose(ours, np.concatenate(expected), rtol=1e-4, atol=1e-4)
    unedited, _ = run.capture(sents, path, "classifier_in")
    assert not np.allclose(unedited["h"], edited["h"], atol=1e-4)  # the edit reached the output


def test_a_folder_whose_labels_do_not_match_the_corpus_is_a_one_line_error(tmp_path):
    folder = make_tiny_bert(tmp_path / "bert", labels=["O", "B-PER", "I-PER", "B-FOO"])
    proc = run_cli("train", folder, "--data", TINY, "--out", tmp_path / "run")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.json" in lines[0] and "B-FOO" in lines[0] and "B-LOC" in lines[0], lines


def test_a_killed_fine_tuning_resumes_to_the_numbers_of_a_straight_run(tmp_path):
    folder = make_tiny_bert(tmp_path / "bert")
    straight = tune(folder, tmp_path / "straight", "model.head=crf")

    def stop(record):
        raise KeyboardInterrupt

    cfg = hf_config(folder, [*RECIPE, "model.head=crf"])
    resolve_data(cfg, str(TINY))
    with pytest.raises(KeyboardInterrupt):
        fine_tune(cfg, tmp_path / "killed", log=lambda msg: None, on_epoch=stop)
    assert not (tmp_path / "killed" / "complete.json").exists()
    resumed = tune(folder, tmp_path / "killed", "model.head=crf")
    assert [r["loss"] for r in resumed["epochs"]] == [r["loss"] for r in straight["epochs"]]
    assert resumed["test"] == straight["test"]


@pytest.mark.parametrize("name", ["tokenizer.json", "vocab.txt"])
def test_a_changed_or_added_encoder_file_is_refused_when_loading(tuned, tmp_path, name):
    copy = tmp_path / "run"
    shutil.copytree(tuned, copy)
    (copy / "encoder" / name).write_text("{}\n", encoding="utf-8")  # tokenizer.json is recorded; vocab.txt is not
    proc = run_cli("analyze", copy, "--out", tmp_path / "an")
    assert proc.returncode == 2 and name in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_nerve_analyze_reads_the_classifier_input_of_a_fine_tuned_run(tuned, tmp_path):
    proc = run_cli("analyze", tuned, "--out", tmp_path / "an", "--methods", "sensitivity,random", "--max-k", "4",
                   "--no-figures")
    assert proc.returncode == 0, proc.stderr
    run = load_hf_run(tuned)
    path, sents = read_split(run, json.loads((tmp_path / "an" / "analysis.json").read_text())["split_name"])
    arrays, _ = run.capture(sents, path)
    saved = np.load(tmp_path / "an" / "activations.npz")
    np.testing.assert_array_equal(saved["h"], arrays["h"])
    assert json.loads((tmp_path / "an" / "complete.json").read_text())["files"]


def test_the_api_tags_a_sentence_as_the_run_predicts_it(tuned):
    import nerve

    run = nerve.load_run(tuned)
    sents = read_split(run._run, "test")[1][:3]
    arrays, _ = run._run.capture(sents, "<test>")
    n = [len(s.words) for s in sents]
    tagged = run.tag([s.words for s in sents])
    assert [t for sent in tagged for t in sent] == [run.tags[i] for i in arrays["pred"][: sum(n)]]


def test_the_api_intervention_at_an_ffn_site_equals_a_plain_hook_on_the_module(tuned):
    import nerve

    run = nerve.load_run(tuned)
    with run.intervene([1, 2], "mean", site="ffn2"):
        edited = run.activations("test", "classifier_in").h
    mean = run.activations("dev", "ffn2").h.mean(axis=0)
    loaded = load_hf_run(tuned)
    path, sents = read_split(loaded, "test")

    def to_mean(values):
        values = values.clone()
        values[:, [1, 2]] = torch.as_tensor(mean[[1, 2]])
        return values

    with loaded.model.edit_words("ffn2", to_mean):
        expected = loaded.capture(sents, path, "classifier_in")[0]["h"]
    np.testing.assert_allclose(edited, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(edited, run.activations("test", "classifier_in").h, atol=1e-5)


def test_fine_tuning_without_a_corpus_is_a_one_line_error(tmp_path):
    folder = make_tiny_bert(tmp_path / "bert")
    proc = run_cli("train", folder, "--out", tmp_path / "run")
    assert proc.returncode == 2 and "--data" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_unknown_setting_is_a_one_line_error_naming_the_known_keys(tmp_path):
    folder = make_tiny_bert(tmp_path / "bert")
    proc = run_cli("train", folder, "--data", TINY, "--out", tmp_path / "run", "--set", "train.lrate=1")
    assert proc.returncode == 2 and "train.lrate" in proc.stderr and "train.lr" in proc.stderr
    assert not (tmp_path / "run").exists()
