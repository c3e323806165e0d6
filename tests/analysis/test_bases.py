"""Bases (issue 33): each fitted basis reconstructs h; every intervention on basis units equals a full model re-run
with h edited along the basis directions through a plain forward hook (softmax and CRF); an identity basis gives
the neurons' numbers exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nerve.analysis.ablation import SCORES, random_orders
from nerve.analysis.bases import FittedBasis, fit_basis, project
from nerve.analysis.core import INTERVENTIONS, AnalysisSpec
from nerve.analysis.heldout import method_rankings, method_sweeps, rank_input
from nerve.errors import NerveError
from nerve.run import load_run
from tests.analysis.rerun import rerun_scores, split_activations
from tests.conftest import run_cli


def _fitted(run_dir, name):
    run = load_run(run_dir)
    _, dev = split_activations(run, "dev")
    test_sents, test = split_activations(run, "test")
    return run, dev, test_sents, test, fit_basis(name, dev.h, seed=3)


@pytest.mark.parametrize("name", ["pca", "ica"])
def test_a_fitted_basis_reconstructs_h_to_rounding(name, tiny_run):
    _, dev, _, test, basis = _fitted(tiny_run, name)
    for acts in (dev, test):
        h = acts.h.astype(np.float64)
        back = basis.center + basis.decode(basis.encode(h))
        np.testing.assert_allclose(back, h, atol=1e-9 * np.abs(h).max())


def test_the_sae_reconstructs_h_to_its_stated_error_with_sparse_features(tiny_run):
    _, dev, _, _, basis = _fitted(tiny_run, "sae")
    h = dev.h.astype(np.float64)
    a = basis.encode(h)
    rec = basis.center + basis.decode(a)
    r2 = 1 - ((h - rec) ** 2).sum() / ((h - h.mean(axis=0)) ** 2).sum()
    assert basis.about["r2"] == pytest.approx(r2, abs=1e-6) and 0.5 < r2 < 1
    assert basis.about["l0"] == pytest.approx((a > 0).sum(axis=1).mean(), abs=1e-3)
    assert a.shape[1] == 4 * h.shape[1] and (a >= 0).all() and (a == 0).mean() > 0.2


def test_the_sae_fit_is_reproducible_by_seed(tiny_run):
    run = load_run(tiny_run)
    _, dev = split_activations(run, "dev")
    a, b, c = (fit_basis("sae", dev.h, seed=s) for s in (4, 4, 5))
    np.testing.assert_array_equal(a.D, b.D)
    np.testing.assert_array_equal(a.encoder, b.encoder)
    assert not np.array_equal(a.D, c.D)


def test_pca_directions_are_orthonormal_and_ordered_by_variance(tiny_run):
    _, dev, _, _, basis = _fitted(tiny_run, "pca")
    np.testing.assert_allclose(basis.D @ basis.D.T, np.eye(basis.n_units), atol=1e-10)
    var = basis.encode(dev.h).var(axis=0)
    assert np.all(np.diff(var) <= 1e-9)


def test_the_projected_model_scores_every_token_as_the_model(crf_run):
    _, _, _, test, basis = _fitted(crf_run, "ica")
    p = project(test, basis)
    want = test.h.astype(np.float64) @ test.W.astype(np.float64).T + test.b
    np.testing.assert_allclose(p.h @ p.W.T + p.b, want, atol=1e-9 * np.abs(want).max())
    assert p.neurons[:2] == ["ica0", "ica1"] and p.b.shape == (test.n_tokens, len(test.tags))


@pytest.mark.parametrize("which,name", [("softmax", "pca"), ("softmax", "ica"), ("softmax", "sae"), ("crf", "pca"),
                                        ("crf", "ica"), ("crf", "sae")])
def test_every_basis_intervention_row_equals_a_rerun_with_h_edited_along_the_directions(which, name, tiny_run,
                                                                                       crf_run):
    run, dev, test_sents, test, basis = _fitted(tiny_run if which == "softmax" else crf_run, name)
    pdev, ptest = project(dev, basis), project(test, basis)
    spec = AnalysisSpec(split="test", rank_split="dev", methods=("sensitivity", "random"), max_k=3, random_draws=2,
                        seed=5, interventions=("zero", "mean", "resample"))
    rows = method_sweeps(rank_input(pdev), ptest, spec)
    ranking = method_rankings(rank_input(pdev), ["sensitivity"])["sensitivity"]
    rand = random_orders(basis.n_units, 2, 5)
    values = {a: INTERVENTIONS.get(a).token_values(pdev.h, ptest.h, 5) for a in ("zero", "mean", "resample")}
    tags = list(test.tags)
    cache = {}
    for r in rows:
        k = int(r["k"])
        units = np.asarray(rand[r["draw"]][:k] if r["method"] == "random"
                           else ranking[tags.index(r["target_tag"]), :k], dtype=np.intp)
        key = (r["ablate"], tuple(sorted(units.tolist())))
        if key not in cache:
            v = values[r["ablate"]]

            def edit(at, rows_, units=units, v=v):  # h + (v_S − a_S)·D_S, from the site's own rows
                a = basis.encode(rows_)
                target = (np.zeros((len(rows_), units.size)) if v is None else
                          np.broadcast_to(v[units], (len(rows_), units.size)) if np.ndim(v) == 1 else
                          v[at:at + len(rows_)][:, units])
                return rows_ + (target - a[:, units]) @ basis.D[units]

            cache[key] = rerun_scores(run, test_sents, run.cfg.data.test, edit)
        got = [float(r[f]) for f in SCORES]
        np.testing.assert_allclose(got, np.asarray(cache[key][r["eval_tag"]], dtype=float), atol=1e-9,
                                   err_msg=str(r))
    assert len(cache) > 12


def test_an_identity_basis_gives_the_neurons_numbers_exactly(crf_run):
    run = load_run(crf_run)
    _, dev = split_activations(run, "dev")
    _, test = split_activations(run, "test")
    n = dev.h.shape[1]
    eye = FittedBasis("id", np.zeros(n), np.eye(n), np.eye(n), {})
    spec = AnalysisSpec(split="test", rank_split="dev", methods=("sensitivity", "probeless", "random"), max_k=4,
                        random_draws=3, interventions=("zero", "mean", "resample"))
    want = method_sweeps(rank_input(dev), test, spec)
    got = method_sweeps(rank_input(project(dev, eye)), project(test, eye), spec)
    assert project(test, eye).b.ndim == 2  # the bias per token, as every other basis has it
    for f in SCORES:
        np.testing.assert_array_equal(got[f], want[f])


def test_cli_analyze_with_basis_pca_writes_the_basis_and_names_its_units(tiny_run, tmp_path):
    out = tmp_path / "pca"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--basis", "pca", "--max-k", "2", "--random-draws", "2", "--no-figures", "--out", out, check=True)
    about = json.loads((out / "analysis.json").read_text())["basis"]
    assert about["name"] == "pca" and about["file"] == "basis.npz"
    saved = np.load(out / "basis.npz")
    assert saved["D"].shape == (about["units"], about["units"])
    assert (out / "sensitivity.csv").read_text().splitlines()[1].startswith("pca0,")
    identity = json.loads((out / "complete.json").read_text())
    assert "pca" in json.dumps(identity)


def test_an_unknown_basis_is_a_one_line_error():
    with pytest.raises(NerveError, match="basis"):
        AnalysisSpec(basis="sae9")


def test_a_basis_fitted_on_fewer_tokens_than_units_is_a_one_line_error():
    with pytest.raises(NerveError, match="more tokens than units"):
        fit_basis("pca", np.ones((3, 5)))


@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_every_leace_row_equals_a_rerun_with_the_packages_erasure_through_a_plain_hook(which, tiny_run, crf_run):
    from nerve.analysis.leace import erase, leace_eraser, leace_rows

    run = load_run(tiny_run if which == "softmax" else crf_run)
    _, dev = split_activations(run, "dev")
    test_sents, test = split_activations(run, "test")
    rank = rank_input(dev)
    erased, names, table = leace_rows(rank, test)
    tags = list(test.tags)
    assert erased[0] == "none" and len(erased) > 3
    for e, tag in enumerate(erased):
        if tag == "none":
            want = rerun_scores(run, test_sents, run.cfg.data.test, lambda at, rows: rows)
        else:
            eraser = leace_eraser(dev.h, rank.labels, tags.index(tag))
            want = rerun_scores(run, test_sents, run.cfg.data.test, lambda at, rows, f=eraser: erase(f, rows))
        for i, name in enumerate(names):
            np.testing.assert_allclose(table[e, i], np.asarray(want[name], dtype=float), atol=1e-9,
                                       err_msg=f"{tag} {name}")


def test_leace_leaves_no_linear_information_of_the_tag_in_the_ranking_split(tiny_run):
    from nerve.analysis.leace import erase, leace_eraser

    run = load_run(tiny_run)
    _, dev = split_activations(run, "dev")
    labels = rank_input(dev).labels
    z = int(np.bincount(labels).argmax())
    x = erase(leace_eraser(dev.h, labels, z), dev.h)
    indicator = (labels == z).astype(float)
    cov = ((x - x.mean(axis=0)) * (indicator - indicator.mean())[:, None]).mean(axis=0)  # shape: (n,)
    before = ((dev.h - dev.h.mean(axis=0)) * (indicator - indicator.mean())[:, None]).mean(axis=0)
    assert np.abs(cov).max() < 1e-6 * np.abs(before).max()


def test_cli_analyze_with_several_bases_writes_each_into_its_folder_and_leace_into_the_first(tiny_run, tmp_path):
    out = tmp_path / "multi"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--basis", "neurons,pca,leace", "--max-k", "2", "--random-draws", "2", "--no-figures", "--out", out,
            check=True)
    assert (out / "leace_summary.csv").is_file() and (out / "methods_summary.csv").is_file()
    assert not (out / "basis.npz").exists()  # the first analysis reads neurons
    sub = out / "bases" / "pca"
    assert (sub / "complete.json").is_file() and (sub / "basis.npz").is_file() and not (sub / "leace.csv").exists()


def test_a_basis_given_twice_is_a_one_line_error(tiny_run, tmp_path):
    res = run_cli("analyze", tiny_run, "--basis", "pca,pca", "--out", tmp_path / "x")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "pca is given twice" in res.stderr


def test_tag_shares_count_each_units_most_active_tokens_by_absolute_value():
    from nerve.analysis.basis_summary import tag_shares

    rng = np.random.default_rng(0)
    h, labels = rng.normal(size=(60, 4)), rng.integers(0, 3, 60)
    got = tag_shares(h, labels, 3, top=7)
    for u in range(4):
        top = sorted(range(60), key=lambda t: (-abs(h[t, u]), t))[:7]
        np.testing.assert_allclose(got[u], [sum(labels[t] == z for t in top) / 7 for z in range(3)])


def test_units_to_halve_is_the_first_k_at_half_the_baseline_or_below():
    from nerve.analysis.basis_summary import units_to_halve

    dt = [("method", "U8"), ("ablate", "U8"), ("target_tag", "U8"), ("selection", "U8"), ("eval_tag", "U8"),
          ("k", int), ("accuracy", float)]
    curve = [0.8, 0.7, 0.41, 0.4, 0.1]
    rows = np.array([("m", "zero", "A", "top", "A", k, a) for k, a in enumerate(curve)]
                    + [("m", "zero", "A", "top", "B", k, 0.0) for k in range(5)], dtype=dt)
    assert units_to_halve(rows, "m", "zero", "A") == 3
    assert units_to_halve(rows[rows["k"] < 3], "m", "zero", "A") is None


def test_the_reconstruction_drop_is_zero_for_pca_and_the_f1_lost_to_the_sae_error(crf_run):
    from nerve.analysis.ablation import score_predictions
    from nerve.analysis.basis_summary import reconstruction_f1_drop
    from nerve.model.crf import viterbi

    _, _, _, test, pca = _fitted(crf_run, "pca")
    assert reconstruction_f1_drop(test, pca) == pytest.approx(0.0, abs=1e-12)
    _, _, _, _, sae = _fitted(crf_run, "sae")
    rec = sae.center + sae.encode(test.h) @ sae.D
    preds = [viterbi(x @ test.W.astype(float).T + test.b, test.sentence_starts, test.crf)
             for x in (test.h.astype(float), rec)]
    names, table = score_predictions(np.stack(preds), test)
    f1 = table[:, names.index("F1"), 0]
    assert reconstruction_f1_drop(test, sae) == pytest.approx(f1[0] - f1[1], abs=1e-12)


def test_cli_analyze_writes_the_basis_summary_of_every_basis(tiny_run, tmp_path):
    import csv

    out = tmp_path / "b"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--basis", "neurons,ica", "--max-k", "3", "--random-draws", "2", "--no-figures", "--out", out, check=True)
    for folder, name in ((out, "neurons"), (out / "bases" / "ica", "ica")):
        rows = list(csv.DictReader((folder / "basis_summary.csv").open()))
        assert rows and {r["basis"] for r in rows} == {name} and {r["method"] for r in rows} == {"sensitivity"}


def test_the_explorer_of_a_basis_analysis_shows_its_units(tiny_run, tmp_path):
    from nerve.explore.data import run_payload

    out = tmp_path / "sae"
    run_cli("analyze", tiny_run, "--split", "test", "--basis", "sae", "--max-k", "2", "--random-draws", "2",
            "--no-figures", "--out", out, check=True)
    payload = run_payload(out)
    assert payload["units"][:2] == ["sae0", "sae1"] and len(payload["single_ablation"]) == len(payload["units"])


def test_analysing_a_folder_again_removes_the_files_the_earlier_analysis_wrote_and_this_one_does_not(tiny_run,
                                                                                                    tmp_path):
    out = tmp_path / "a"
    common = ["--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random", "--max-k", "2",
              "--random-draws", "2", "--no-figures", "--out", out]
    run_cli("analyze", tiny_run, *common, "--basis", "pca,leace", "--sufficiency", check=True)
    assert {"basis.npz", "leace.csv", "sufficiency.csv"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")
    run_cli("analyze", tiny_run, *common, check=True)
    names = {p.name for p in out.iterdir()}
    assert not names & {"basis.npz", "leace.csv", "leace_summary.csv", "sufficiency.csv", "sufficiency_summary.csv"}
    assert "notes.txt" in names and "methods.csv" in names  # never a file the analysis did not write
