"""Baselines at the judged ks: the many random draws equal the curve's rows of the same draws, a matched set
scores as a plain-hook re-run, the matched sets keep the top k's variance deciles, and the p are the formula."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.analysis.core import INTERVENTIONS, AnalysisSpec
from nerve.analysis.draws import (
    Draws,
    DrawSpec,
    SetScorer,
    baseline_rows,
    matched_sets,
    random_draw_scores,
    read_draws,
    variance_deciles,
    write_draws,
)
from nerve.analysis.heldout import method_sufficiency, method_sweeps, rank_input
from nerve.errors import NerveError
from nerve.run import load_run
from tests.analysis.rerun import rerun_scores, split_activations
from tests.analysis.test_interventions import _replacer


def _splits(which, tiny_run, crf_run):
    run = load_run(tiny_run if which == "softmax" else crf_run)
    _, dev = split_activations(run, "dev")
    test_sents, test = split_activations(run, "test")
    return run, dev, test_sents, test


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_random_draws_at_judged_ks_equal_the_curves_rows_of_the_same_draws(which, keep, tiny_run, crf_run):
    _, dev, _, test = _splits(which, tiny_run, crf_run)
    spec = AnalysisSpec(split="test", rank_split="dev", methods=("random",), max_k=5, interventions=("mean",),
                        random_draws=3, seed=2)
    sweep = method_sufficiency if keep else method_sweeps
    rows = sweep(rank_input(dev), test, spec)
    values = INTERVENTIONS.get("mean").token_values(dev.h, test.h, 2)
    got = random_draw_scores(test, values, DrawSpec((1, 5), draws=6, matched=0, seed=2, keep=keep))
    tags = list(test.tags)
    for i, k in enumerate((1, 5)):
        for d in range(3):
            for z, tag in enumerate(tags):
                row = rows[(rows["target_tag"] == tags[0]) & (rows["k"] == k) & (rows["draw"] == d)
                           & (rows["eval_tag"] == tag)]
                np.testing.assert_allclose(got[i, d, z], [row["accuracy"][0], row["f1"][0]], equal_nan=True,
                                           atol=1e-12)


@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_a_matched_set_scores_as_a_plain_hook_rerun_with_those_units_replaced(which, tiny_run, crf_run):
    run, dev, test_sents, test = _splits(which, tiny_run, crf_run)
    values = INTERVENTIONS.get("resample").token_values(dev.h, test.h, 4)
    units = matched_sets(np.array([0, 3]), variance_deciles(dev.h), 1, np.random.default_rng(0))[0]
    got = SetScorer(test, values, 2)(units)
    want = rerun_scores(run, test_sents, run.cfg.data.test, _replacer(values, units))
    for z, tag in enumerate(test.tags):
        np.testing.assert_allclose(got[z], [want[tag][0], want[tag][3]], equal_nan=True, atol=1e-12)


def test_matched_sets_keep_each_top_units_variance_decile_without_repeats_or_top_units():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(200, 60)) * np.linspace(0.1, 5, 60)
    deciles = variance_deciles(h)
    top = np.array([59, 58, 3, 30])
    sets = matched_sets(top, deciles, 50, np.random.default_rng(1))
    assert sets.shape == (50, 4)
    for s in sets:
        assert sorted(deciles[s]) == sorted(deciles[top]) and len(set(s)) == 4 and not set(s) & set(top)
    assert len({tuple(s) for s in sets}) > 10


def test_variance_deciles_split_the_units_into_ten_equal_groups_by_variance():
    h = np.random.default_rng(0).normal(size=(100, 50)) * np.arange(1, 51)
    deciles = variance_deciles(h)
    np.testing.assert_array_equal(np.bincount(deciles), [5] * 10)
    assert deciles[0] == 0 and deciles[-1] == 9


def test_baseline_p_is_one_plus_the_draws_at_least_as_large_over_one_plus_the_draws(tmp_path):
    random = np.zeros((1, 4, 2, 2))
    random[0, :, 0, 0] = [0.9, 0.5, 0.7, 0.2]  # drops from 1.0: 0.1, 0.5, 0.3, 0.8
    matched = np.zeros((1, 2, 1, 2, 2))
    matched[0, 0, 0, :, 0] = [0.4, 0.95]  # drops 0.6, 0.05
    write_draws(tmp_path / "d.npz", {"zero": Draws((5,), ["A", "B"], ["m"], random, matched)})
    draws = read_draws(tmp_path / "d.npz")
    judged = [{"method": "m", "ablate": "zero", "score": "accuracy", "target_tag": "A", "k": 5, "baseline": 1.0,
               "own_drop": 0.5}]
    (row,) = baseline_rows(judged, draws)
    assert row["random_p"] == pytest.approx((1 + 2) / 5) and row["random_mean_drop"] == pytest.approx(0.425)
    assert row["matched_p"] == pytest.approx((1 + 1) / 3) and row["n_matched"] == 2


def test_judged_draws_without_methods_are_a_one_line_error():
    with pytest.raises(NerveError, match="--judged-draws, --matched-draws: only the --methods"):
        AnalysisSpec(judged_draws=100)


def test_cli_analyze_with_judged_and_matched_draws_writes_baselines_for_necessity_and_sufficiency(tiny_run,
                                                                                                  tmp_path):
    import csv

    from tests.conftest import run_cli

    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--ablate", "zero,mean", "--sufficiency", "--max-k", "5", "--random-draws", "2", "--judged-draws", "50",
            "--matched-draws", "5", "--no-figures", "--out", out, check=True)
    for stem in ("methods", "sufficiency"):
        rows = list(csv.DictReader((out / f"{stem}_baselines.csv").open()))
        assert {r["ablate"] for r in rows} == {"zero", "mean"} and {r["k"] for r in rows} == {"1", "5"}
        assert {r["n_random"] for r in rows} == {"50"}
        assert {(r["k"], r["n_matched"]) for r in rows} == {("1", "0"), ("5", "5")}  # matched at the reported k
        assert min(float(r["random_p"]) for r in rows) >= 1 / 51 - 1e-9
        assert read_draws(out / f"{stem}_draws.npz")["mean"].random.shape[:2] == (2, 50)


def test_baseline_summary_is_the_mean_over_runs_of_each_runs_tag_mean_with_a_t_interval_of_the_excess():
    from scipy import stats

    from nerve.analysis.draws import baseline_summary

    rng = np.random.default_rng(0)
    per_run, excess = [], []
    for _ in range(4):
        own, mat = rng.uniform(0.2, 0.6, 3), rng.uniform(0, 0.2, 3)
        per_run.append([{"method": "m", "ablate": "zero", "score": "accuracy", "target_tag": t, "k": 10,
                         "own_drop": o, "random_mean_drop": 0.01, "random_p": p, "n_random": 1000,
                         "matched_mean_drop": a, "matched_p": 0.5, "n_matched": 100}
                        for t, o, a, p in zip(("B-PER", "I-PER", "O"), own, mat, (0.0005, 0.2, 0.0001))])
        excess.append(own[:2].mean() - mat[:2].mean())  # O is not among the tags summarised
    (row,) = baseline_summary(per_run, ["B-PER", "I-PER"])
    lo, hi = stats.t.interval(0.95, 3, np.mean(excess), stats.sem(excess))
    assert row["excess_matched"] == pytest.approx(np.mean(excess))
    assert (row["excess_matched_lo"], row["excess_matched_hi"]) == pytest.approx((lo, hi))
    assert (row["tag_runs"], row["tag_runs_p_below"], row["n_tags"]) == (8, 4, 2)


def _summary_input(n_random: int, ps: tuple) -> list[list[dict]]:
    return [[{"method": "m", "ablate": "mean", "score": "accuracy", "target_tag": t, "k": 10, "own_drop": 0.4,
              "random_mean_drop": 0.01, "random_p": p, "n_random": n_random, "matched_mean_drop": None,
              "matched_p": None, "n_matched": 0} for t, p in zip(("B-PER", "I-PER"), ps)]]


def test_baseline_summary_gives_the_p_floor_of_the_draws_and_the_tag_runs_at_it():
    from nerve.analysis.draws import baseline_summary

    (row,) = baseline_summary(_summary_input(200, (1 / 201, 0.3)), ["B-PER", "I-PER"])
    assert row["p_floor"] == pytest.approx(1 / 201) and row["tag_runs_at_floor"] == 1
    assert row["tag_runs_p_below"] == 0  # 200 draws cannot give p < 0.001


def test_the_reports_baseline_cell_says_when_the_draws_cannot_reach_its_p_threshold():
    from nerve.analysis.draws import baseline_summary
    from nerve.report.methods_section import _below

    (few,) = baseline_summary(_summary_input(200, (1 / 201, 0.3)), ["B-PER", "I-PER"])
    assert _below(few) == "1 of 2 at the floor 1/201"
    (many,) = baseline_summary(_summary_input(1000, (1 / 1001, 0.3)), ["B-PER", "I-PER"])
    assert _below(many) == "1 of 2"
