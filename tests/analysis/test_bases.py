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


@pytest.mark.parametrize("which,name", [("softmax", "pca"), ("softmax", "ica"), ("crf", "pca"), ("crf", "ica")])
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
