"""Held-out method sweeps: rankings from the ranking split only; every row equals a full model re-run on the
scoring split with the units set to 0 or to their ranking-split mean through the hook (softmax and CRF)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from nerve.analysis.checks import AnalysisInputError, check_activations
from nerve.analysis.core import AnalysisSpec
from nerve.analysis.heldout import (
    METHOD_FIELDS,
    method_rankings,
    method_sweeps,
    methods_csv,
    rank_input,
    read_methods_csv,
    write_methods_csv,
)
from nerve.data.prepare import encode_split
from nerve.errors import NerveError
from nerve.model.hooks import ablate
from nerve.run import load_run, predict
from tests.analysis.analysis_synthetic import reference_scores
from tests.analysis.rerun import split_activations
from tests.conftest import TINY, TINY_CFG, run_cli


def _rerun(run, sents, path, units, values):
    enc = run.indexer()
    items = encode_split(enc, sents, path)
    with ablate(run.model, units, values=values):
        pred = predict(run.model, items, enc.extra_vectors())
    tags = run.vocabs.tags.itos
    flat_g = [tags.index(t) for s in sents for t in s.tags]
    flat_p = [int(i) for p in pred for i in p]
    return reference_scores(flat_g, flat_p, tags, np.cumsum([0] + [len(s.tags) for s in sents[:-1]]))


@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_every_held_out_row_equals_a_model_rerun_through_the_hook(which, tiny_run, crf_run):
    run = load_run(tiny_run if which == "softmax" else crf_run)
    dev_sents, dev = split_activations(run, "dev")
    test_sents, test = split_activations(run, "test")
    spec = AnalysisSpec(split="test", rank_split="dev", methods=("probeless", "sensitivity", "random"), max_k=3,
                        interventions=("zero", "mean"), random_draws=2)
    rows = method_sweeps(rank_input(dev), test, spec)
    rankings = method_rankings(rank_input(dev), ["probeless", "sensitivity"])
    means = dev.h.astype(np.float64).mean(axis=0)
    from nerve.analysis.ablation import random_orders

    rand = random_orders(dev.h.shape[1], 2, 0)
    tags = list(test.tags)
    cache = {}
    assert set(rows["ablate"]) == {"zero", "mean"} and set(rows["score_split"]) == {"test"}
    for r in rows:
        k = int(r["k"])
        units = (list(rand[r["draw"]][:k]) if r["method"] == "random"
                 else list(rankings[r["method"]][tags.index(r["target_tag"]), :k]))
        key = (r["ablate"], tuple(sorted(units)))
        if key not in cache:
            cache[key] = _rerun(run, test_sents, run.cfg.data.test, units,
                                means.astype(np.float32) if r["ablate"] == "mean" else None)
        got = [float(r[f]) for f in ("accuracy", "precision", "recall", "f1")]
        np.testing.assert_allclose(got, np.asarray(cache[key][r["eval_tag"]], dtype=float), atol=1e-9,
                                   err_msg=str(r))


def test_rankings_come_from_the_ranking_split_alone(tiny_run):
    run = load_run(tiny_run)
    _, dev = split_activations(run, "dev")
    _, test = split_activations(run, "test")
    spec = AnalysisSpec(methods=("probeless",), max_k=2)
    a = method_sweeps(rank_input(dev), test, spec)
    shuffled = check_activations({**_arrays(test), "h": np.random.default_rng(0).permutation(test.h)})
    b = method_sweeps(rank_input(dev), shuffled, spec)
    assert not np.array_equal(a["accuracy"], b["accuracy"])  # the scores see the scoring split ...
    r_a = method_rankings(rank_input(dev), ["probeless"])["probeless"]
    assert np.array_equal(r_a, method_rankings(rank_input(dev), ["probeless"])["probeless"])
    changed = method_rankings(rank_input(shuffled), ["probeless"])["probeless"]
    assert not np.array_equal(r_a, changed)  # ... and a ranking changes only with its own split


def _arrays(acts):
    out = {"h": acts.h, "gold": acts.gold, "pred": acts.pred, "tags": np.array(acts.tags), "W": acts.W, "b": acts.b,
           "neurons": np.array(acts.neurons), "sentence_starts": acts.sentence_starts,
           "decoder": np.array(acts.decoder)}
    return out


def test_methods_csv_names_method_ablation_and_both_splits(tiny_run):
    run = load_run(tiny_run)
    _, dev = split_activations(run, "dev")
    rows = method_sweeps(rank_input(dev), dev, AnalysisSpec(split="dev", methods=("selectivity",), max_k=1))
    lines = methods_csv(rows).splitlines()
    assert lines[0] == ",".join(METHOD_FIELDS)
    assert lines[1].startswith("selectivity,zero,dev,dev,")


def test_methods_csv_reads_back_as_the_rows_written(tiny_run, tmp_path):
    run = load_run(tiny_run)
    _, dev = split_activations(run, "dev")
    spec = AnalysisSpec(methods=("selectivity", "random"), max_k=2, interventions=("zero", "mean"), random_draws=2)
    rows = method_sweeps(rank_input(dev), dev, spec)
    write_methods_csv(tmp_path / "methods.csv", rows)
    back = read_methods_csv(tmp_path / "methods.csv")
    assert back.dtype == rows.dtype
    for f in METHOD_FIELDS:
        np.testing.assert_array_equal(back[f], rows[f])


def test_read_methods_csv_refuses_another_header_naming_the_file(tmp_path):
    path = tmp_path / "methods.csv"
    path.write_text("method,k\nprobe,1\n", encoding="utf-8")
    with pytest.raises(AnalysisInputError, match=f"{path}: expected a methods.csv with header method,ablate"):
        read_methods_csv(path)


def test_unknown_method_or_ablation_value_is_refused_by_the_spec():
    with pytest.raises(NerveError, match="--methods lasso: unknown ranking method; expected one of sensitivity"):
        AnalysisSpec(methods=("lasso",))
    with pytest.raises(NerveError, match="--ablate half: unknown intervention; expected one of zero, mean"):
        AnalysisSpec(methods=("probe",), interventions=("half",))


def test_cli_analyze_with_methods_ranks_on_dev_and_scores_on_test(tiny_run, tmp_path):
    import csv
    import json

    out = tmp_path / "a"
    res = run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods",
                  "sensitivity,probeless,probe,selectivity,random", "--ablate", "zero,mean", "--random-draws", "2",
                  "--max-k", "3", "--formats", "png", "--out", out)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((out / "methods.csv").open()))
    assert {r["method"] for r in rows} == {"sensitivity", "probeless", "probe", "selectivity", "random"}
    assert {(r["rank_split"], r["score_split"]) for r in rows} == {("dev", "test")}
    assert {r["ablate"] for r in rows} == {"zero", "mean"}
    for name in ("methods_summary.csv", "methods_drop_zero.png", "methods_drop_mean.png"):
        assert (out / name).is_file(), name
    summary = list(csv.DictReader((out / "methods_summary.csv").open()))
    assert {r["method"] for r in summary} == {"sensitivity", "probeless", "probe", "selectivity"}
    assert {r["k"] for r in summary} == {"1", "3"} and all(r["n_draws"] == "2" for r in summary)
    marker = json.loads((out / "complete.json").read_text())
    assert "methods.csv" in json.dumps(marker)
    about = json.loads((out / "analysis.json").read_text())
    assert about["rank_split_name"] == "dev" and about["split_name"] == "test"


def test_cli_analyze_ranks_a_crf_model_by_its_marginals_with_finite_judgements(crf_run, tmp_path):
    out = tmp_path / "a"
    run_cli("analyze", crf_run, "--methods", "gradxact,ig,random", "--rank-split", "dev", "--split", "test",
            "--max-k", "2", "--random-draws", "2", "--formats", "png", "--out", out, check=True)
    summary = list(csv.DictReader((out / "methods_summary.csv").open()))
    assert {r["method"] for r in summary} == {"gradxact", "ig"} and {r["score"] for r in summary} == {"accuracy", "f1"}
    assert all(math.isfinite(float(r["own_drop"])) for r in summary)
    assert (out / "methods_drop_zero_f1.png").is_file() and (out / "methods_curves_zero.png").is_file()


def test_cli_analyze_with_an_unknown_method_is_a_one_line_error(tiny_run, tmp_path):
    res = run_cli("analyze", tiny_run, "--methods", "sensitivity,lasso", "--out", tmp_path / "a")
    assert res.returncode == 2
    assert res.stderr.strip() == ("nerve: error: --methods lasso: unknown ranking method; expected one of "
                                  "sensitivity, probeless, selectivity, probe, gradxact, ig, ig_mean, random")


def test_gradxact_equals_captums_layer_gradient_x_activation_on_the_models_hook_point(tiny_run):
    import dataclasses

    import torch
    from captum.attr import LayerGradientXActivation

    from nerve.analysis.methods import gradxact_scores
    from nerve.data.batching import batches
    from nerve.model.hooks import hook_point

    run = load_run(tiny_run)
    sents, dev = split_activations(run, "dev")
    enc = run.indexer()
    items = [i for i in encode_split(enc, sents, run.cfg.data.dev) if len(i.words)]
    ((_, batch),) = list(batches(items, len(items), order=np.arange(len(items)), with_chars=False))
    model = run.model.eval().double()
    layer = hook_point(model, "encoder_out")
    labels = torch.as_tensor(dev.pred)
    mask = batch.mask

    def target_logprob(words):
        em = model.emissions(dataclasses.replace(batch, words=words))
        lp = torch.log_softmax(em, dim=-1)[mask]  # (N, T), tokens in sentence order
        return torch.zeros(len(items), dtype=lp.dtype).index_add(
            0, mask.nonzero()[:, 0], lp[torch.arange(len(labels)), labels])

    def per_tag(attr):
        a = attr[mask].detach().numpy()
        return np.stack([a[dev.pred == z].mean(axis=0) if np.any(dev.pred == z) else np.full(a.shape[1], np.nan)
                         for z in range(len(dev.tags))], axis=1)

    x = rank_input(dev)
    gxa = LayerGradientXActivation(target_logprob, layer).attribute(batch.words)
    np.testing.assert_allclose(gradxact_scores(x), per_tag(gxa), atol=1e-5)


def test_cli_compare_aggregates_the_methods_of_runs_analysed_with_them(tiny_run, tmp_path):
    import csv

    second = tmp_path / "seed7"
    run_cli("train", TINY_CFG, "--data", TINY, "--out", second, "--no-progress", "--set", "train.seed=7", check=True)
    dirs = []
    for run in (tiny_run, second):
        out = tmp_path / f"m-{run.name}"
        run_cli("analyze", run, "--split", "test", "--rank-split", "dev", "--no-figures", "--methods",
                "sensitivity,probeless,random",
                "--random-draws", "3", "--max-k", "3", "--out", out, check=True)
        dirs.append(out)
    res = run_cli("compare", *dirs, "--out", tmp_path / "cmp", "--no-figures")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((tmp_path / "cmp" / "methods_across_runs.csv").open()))
    assert {r["method"] for r in rows} == {"sensitivity", "probeless"} and "2" in {r["n_runs"] for r in rows}
    judged = [{r["target_tag"] for r in csv.DictReader((d / "methods_summary.csv").open())} for d in dirs]
    for r in rows:  # a tag that a run's ranking split lacks is not judged in that run
        assert int(r["n_runs"]) == sum(r["target_tag"] in tags for tags in judged), r["target_tag"]
    assert "ranking methods across runs:" in res.stderr
    assert not [p for ext in ("png", "svg", "pdf") for p in (tmp_path / "cmp").rglob(f"*.{ext}")]  # --no-figures


def test_compare_of_analyses_with_one_folder_name_keeps_every_run(tiny_run, tmp_path):
    import json

    other = tmp_path / "seed2"  # a second model: one model counts once in a comparison
    run_cli("train", TINY_CFG, "--data", TINY, "--out", other, "--set", "train.seed=2", "--no-progress", check=True)
    dirs = []
    for i, run in enumerate((tiny_run, other)):
        out = tmp_path / f"r{i}" / "same"
        run_cli("analyze", run, "--random-draws", "1", "--max-k", "2", "--seed", str(i), "--no-figures", "--out", out,
                check=True)
        dirs.append(out)
    res = run_cli("compare", *dirs, "--out", tmp_path / "cmp", "--no-figures")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "cmp" / "corr_same.csv").is_file() and (tmp_path / "cmp" / "corr_same_1.csv").is_file()
    assert len(json.loads((tmp_path / "cmp" / "findings.json").read_text())[0]["runs"]) == 2


def test_cli_analyze_with_a_missing_rank_split_names_the_rank_split_option(tiny_run, tmp_path):
    res = run_cli("analyze", tiny_run, "--methods", "probeless", "--rank-split", "valid", "--out", tmp_path / "a")
    assert res.returncode == 2
    assert res.stderr.strip() == ("nerve: error: --rank-split valid: expected dev, test, train or a CoNLL file path; "
                                  "no such split or file (did you mean --rank-split dev?)")
