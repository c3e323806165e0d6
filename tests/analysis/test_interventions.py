"""Interventions (zero, mean, resample) and sufficiency: every sweep row equals a full model re-run on the
scoring split with the units replaced by a plain forward hook, sentence by sentence (softmax and CRF)."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.analysis.ablation import random_orders
from nerve.analysis.core import INTERVENTIONS, AnalysisSpec
from nerve.analysis.heldout import method_rankings, method_sufficiency, method_sweeps, rank_input
from nerve.analysis.interventions import Resample
from nerve.errors import NerveError
from nerve.run import load_run
from tests.analysis.rerun import rerun_scores, split_activations
from tests.conftest import TINY, TINY_CFG, run_cli

METHODS = ("sensitivity", "random")


def _replacer(values, units):
    """edit(offset, rows): rows[:, units] = values (n,) or the token rows of values (n_tokens, n); None: 0."""
    units = np.asarray(units, dtype=np.intp)

    def edit(at, rows):
        if values is None:
            rows[:, units] = 0.0
        elif np.ndim(values) == 1:
            rows[:, units] = np.asarray(values, np.float32)[units]
        else:
            rows[:, units] = np.asarray(values, np.float32)[at:at + len(rows)][:, units]
        return rows

    return edit


def _check_rows(run, sents, rows, units_of, values_of, complement):
    n = values_of.n
    cache = {}
    for r in rows:
        units = units_of(r)
        if complement:
            units = sorted(set(range(n)) - set(units))
        key = (r["ablate"], tuple(sorted(units)))
        if key not in cache:
            cache[key] = rerun_scores(run, sents, run.cfg.data.test, _replacer(values_of(r["ablate"]), units))
        got = [float(r[f]) for f in ("accuracy", "precision", "recall", "f1")]
        np.testing.assert_allclose(got, np.asarray(cache[key][r["eval_tag"]], dtype=float), atol=1e-9,
                                   err_msg=str(r))
    return len(cache)


class _Values:
    def __init__(self, dev, test, seed):
        self.n = dev.h.shape[1]
        self.v = {name: INTERVENTIONS.get(name).token_values(dev.h, test.h, seed)
                  for name in ("zero", "mean", "resample")}

    def __call__(self, name):
        return self.v[name]


def _setup(which, tiny_run, crf_run, ablate, **kw):
    run = load_run(tiny_run if which == "softmax" else crf_run)
    _, dev = split_activations(run, "dev")
    test_sents, test = split_activations(run, "test")
    spec = AnalysisSpec(split="test", rank_split="dev", methods=METHODS, max_k=3, interventions=ablate,
                        random_draws=2, seed=5, **kw)
    rankings = method_rankings(rank_input(dev), ["sensitivity"])
    rand = random_orders(dev.h.shape[1], 2, 5)
    tags = list(test.tags)

    def units_of(r):
        k = int(r["k"])
        return (list(rand[r["draw"]][:k]) if r["method"] == "random"
                else list(rankings["sensitivity"][tags.index(r["target_tag"]), :k]))

    return run, dev, test_sents, test, spec, units_of


@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_every_resample_row_equals_a_rerun_with_other_tokens_values_through_a_plain_hook(which, tiny_run, crf_run):
    run, dev, test_sents, test, spec, units_of = _setup(which, tiny_run, crf_run, ("resample",))
    rows = method_sweeps(rank_input(dev), test, spec)
    assert set(rows["ablate"]) == {"resample"}
    assert _check_rows(run, test_sents, rows, units_of, _Values(dev, test, 5), complement=False) > 4


@pytest.mark.parametrize("which", ["softmax", "crf"])
def test_every_sufficiency_row_equals_a_rerun_with_all_other_units_replaced(which, tiny_run, crf_run):
    run, dev, test_sents, test, spec, units_of = _setup(which, tiny_run, crf_run, ("zero", "mean", "resample"))
    rows = method_sufficiency(rank_input(dev), test, spec)
    assert set(rows["ablate"]) == {"zero", "mean", "resample"} and set(rows["k"]) == {0, 1, 2, 3}
    assert _check_rows(run, test_sents, rows, units_of, _Values(dev, test, 5), complement=True) > 12


def test_sufficiency_with_every_unit_kept_scores_as_the_unedited_model(tiny_run):
    run, dev, _, test, spec, _ = _setup("softmax", tiny_run, None, ("mean",))
    n = dev.h.shape[1]
    keep = method_sufficiency(rank_input(dev), test, spec.replace(max_k=n))
    none = method_sweeps(rank_input(dev), test, spec.replace(max_k=0))
    top = keep[(keep["method"] == "sensitivity") & (keep["k"] == n)]
    base = none[(none["method"] == "sensitivity") & (none["k"] == 0)]
    np.testing.assert_array_equal(top["accuracy"], base["accuracy"])


def test_resample_draws_are_reproducible_by_seed_and_never_the_token_itself():
    a, b, c = Resample.draw(50, 3), Resample.draw(50, 3), Resample.draw(50, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.any(a == np.arange(50)) and a.min() >= 0 and a.max() < 50


def test_resample_token_values_take_every_unit_of_a_token_from_one_other_token():
    h = np.arange(40, dtype=np.float32).reshape(10, 4)
    v = INTERVENTIONS.get("resample").token_values(None, h, 7)
    np.testing.assert_array_equal(v, h[Resample.draw(10, 7)])


def test_resample_has_no_one_value_per_unit():
    with pytest.raises(NerveError, match="resample"):
        INTERVENTIONS.get("resample").values(np.zeros((3, 2)))


def test_resample_of_a_single_token_is_a_one_line_error():
    with pytest.raises(NerveError, match="2 tokens"):
        INTERVENTIONS.get("resample").token_values(None, np.zeros((1, 2)), 0)


def test_cli_analyze_with_sufficiency_writes_its_sweeps_and_their_gains(tiny_run, tmp_path):
    from nerve.analysis.heldout import read_methods_csv
    from nerve.analysis.judging import GAIN_FIELDS, read_summary_csv

    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--ablate", "zero,resample", "--sufficiency", "--max-k", "3", "--random-draws", "4", "--no-figures",
            "--out", out, check=True)
    rows = read_methods_csv(out / "sufficiency.csv")
    judged = read_summary_csv(out / "sufficiency_summary.csv", GAIN_FIELDS)
    assert {r["ablate"] for r in judged} == {"zero", "resample"}
    for r in judged:
        if r["score"] != "accuracy":
            continue
        def pick(k, m="sensitivity", r=r):
            return rows[(rows["method"] == m) & (rows["ablate"] == r["ablate"]) & (rows["k"] == k)
                        & (rows["target_tag"] == r["target_tag"]) & (rows["eval_tag"] == r["target_tag"])]["accuracy"]

        gain = float(pick(r["k"])[0] - pick(0)[0])
        assert r["own_drop"] == pytest.approx(gain, abs=1e-9)  # read back under the drops' names
        draws = pick(r["k"], "random") - pick(0, "random")
        assert r["random_p"] == pytest.approx((1 + np.sum(draws >= gain - 1e-12)) / (1 + draws.size))


def test_sufficiency_without_methods_is_a_one_line_error():
    with pytest.raises(NerveError, match="--sufficiency: only the --methods sweeps take it"):
        AnalysisSpec(sufficiency=True)


def test_cli_compare_writes_paired_comparisons_of_necessity_and_sufficiency_as_paired_comparisons_gives(
        tiny_run, tmp_path):
    import csv

    from nerve.analysis.judging import GAIN_FIELDS, read_summary_csv
    from nerve.analysis.paired import paired_comparisons, paired_csv

    dirs = []
    for seed in (0, 7, 8):
        run = tiny_run if seed == 0 else tmp_path / f"seed{seed}"
        if seed:
            run_cli("train", TINY_CFG, "--data", TINY, "--out", run, "--no-progress", "--set", f"train.seed={seed}",
                    check=True)
        out = tmp_path / f"a{seed}"
        run_cli("analyze", run, "--split", "test", "--rank-split", "dev", "--no-figures", "--methods",
                "sensitivity,probeless,random", "--ablate", "zero,resample", "--sufficiency", "--random-draws", "3",
                "--max-k", "3", "--out", out, check=True)
        dirs.append(out)
    res = run_cli("compare", *dirs, "--out", tmp_path / "cmp", "--no-figures")
    assert res.returncode == 0, res.stderr
    for name, summary, fields in (("methods_paired.csv", "methods_summary.csv", None),
                                  ("sufficiency_paired.csv", "sufficiency_summary.csv", GAIN_FIELDS)):
        per_run = [read_summary_csv(d / summary, *([fields] if fields else [])) for d in dirs]
        want = paired_csv(paired_comparisons(per_run, tags=[]) + paired_comparisons(per_run, overall=False))
        assert (tmp_path / "cmp" / name).read_text() == want
        rows = list(csv.DictReader((tmp_path / "cmp" / name).open()))
        assert {r["ablate"] for r in rows} == {"zero", "resample"} and {r["n_runs"] for r in rows} >= {"3"}


def test_cli_analyze_with_translation_moves_b_tags_and_o_into_each_other(tiny_run, tmp_path):
    from nerve.analysis.translation import read_translation_csv

    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--translation", "--max-k", "2", "--random-draws", "2", "--no-figures", "--out", out, check=True)
    rows = read_translation_csv(out / "translation.csv")
    pairs = set(zip(rows["source_tag"].tolist(), rows["target_tag"].tolist()))
    assert pairs and all(t == "O" or t.startswith("B-") for pair in pairs for t in pair)
    assert {"sensitivity", "random"} == set(rows["method"].tolist())
    assert (out / "translation_summary.csv").read_text().count("\n") > len(pairs)


def test_analyze_with_sufficiency_draws_its_gain_curves_and_plot_analysis_draws_them_again(tiny_run, tmp_path):
    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--ablate", "mean", "--sufficiency", "--max-k", "3", "--random-draws", "2", "--formats", "svg",
            "--out", out, check=True)
    assert (out / "sufficiency_curves_mean.svg").is_file()
    run_cli("plot", "analysis", out, "--out", tmp_path / "again", "--formats", "svg", check=True)
    assert (tmp_path / "again" / "sufficiency_curves_mean.svg").is_file()


def test_the_tidy_table_of_an_analysis_holds_its_sufficiency_rows_as_they_are_in_the_file(tiny_run, tmp_path):
    import nerve
    from nerve.analysis.heldout import read_methods_csv

    out = tmp_path / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,random",
            "--ablate", "mean", "--sufficiency", "--max-k", "2", "--random-draws", "1", "--no-figures", "--out", out,
            check=True)
    frame = nerve.AnalysisResult(out).to_pandas()
    kept = frame[(frame.table == "sufficiency") & (frame.metric == "accuracy")]
    rows = read_methods_csv(out / "sufficiency.csv")
    assert len(kept) == len(rows)
    np.testing.assert_array_equal(np.sort(kept["value"].to_numpy()), np.sort(rows["accuracy"]))
