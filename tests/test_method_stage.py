"""The ranking-methods stage: the saved scores and rankings equal a re-computation on the ranking split, agreement
equals the overlap of the saved rankings, a run compared with itself is perfectly stable, the study judges methods
ranked on dev on test and its report says which method hurt each tag most."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from nerve.analysis.capture import capture_activations
from nerve.analysis.checks import check_activations
from nerve.analysis.heldout import method_score_matrices, rank_input, read_method_scores
from nerve.analysis.ranking import rank_units
from nerve.data.conll import read_conll
from nerve.run import load_run
from tests.conftest import run_cli

METHODS = "sensitivity,probeless,selectivity,gradxact,random"


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage") / "a"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", METHODS, "--random-draws", "2",
            "--max-k", "5", "--out", out, check=True)
    return out


def test_methods_scores_npz_holds_each_methods_scores_on_the_ranking_split(tiny_run, analysed):
    saved = read_method_scores(analysed / "methods_scores.npz")
    run = load_run(tiny_run)
    dev = check_activations(capture_activations(run, read_conll(run.cfg.data.dev), run.cfg.data.dev)[0])
    want = method_score_matrices(rank_input(dev), METHODS.split(","))
    assert saved.methods == [m for m in METHODS.split(",") if m != "random"]
    assert saved.rank_split == "dev" and saved.target == "logprob" and saved.tags == dev.tags
    for m in saved.methods:
        np.testing.assert_allclose(saved.scores[m], want[m], equal_nan=True)
        np.testing.assert_array_equal(saved.rankings[m], rank_units(want[m]))


def test_methods_agreement_csv_is_the_top_k_overlap_of_the_saved_rankings(analysed):
    saved = read_method_scores(analysed / "methods_scores.npz")
    rows = list(csv.DictReader((analysed / "methods_agreement.csv").open()))
    assert rows and {r["rank_split"] for r in rows} == {"dev"}
    for r in rows:
        j, k = saved.tags.index(r["tag"]), int(r["k"])
        a, b = saved.rankings[r["method_a"]][j, :k], saved.rankings[r["method_b"]][j, :k]
        valid = all(np.isfinite(saved.scores[m][:, j]).all() for m in (r["method_a"], r["method_b"]))
        assert r["shared"] == (str(len(set(a) & set(b))) if valid else "")
    assert (analysed / "methods_agreement.png").is_file() and (analysed / "methods_agreement.svg").is_file()


def test_the_methods_of_a_run_and_a_copy_of_its_analysis_are_perfectly_stable(analysed, tmp_path):
    from nerve.method_stage import compare_methods

    copy = tmp_path / "copy"
    shutil.copytree(analysed, copy)
    (copy / ".nerve.lock").unlink(missing_ok=True)
    (tmp_path / "cmp").mkdir()
    compare_methods([analysed, copy], tmp_path / "cmp")  # below the comparison, which counts a model once
    rows = [r for r in csv.DictReader((tmp_path / "cmp" / "methods_stability.csv").open()) if r["shared_mean"]]
    assert rows and all(float(r["shared_mean"]) == int(r["k"]) and r["n_pairs"] == "1" for r in rows)
    assert {(r["rank_split"], r["matched_on"]) for r in rows} == {("dev", "test")}
    for name in ("methods_agreement_across_runs.csv", "methods_agreement_mean.png", "methods_stability.png",
                 "methods_drop_zero_mean.png"):
        assert (tmp_path / "cmp" / name).is_file(), name


def test_a_loaded_analysis_holds_the_rows_of_its_methods_csv(analysed):
    from nerve.analysis.compare import load_run_analysis
    from nerve.analysis.heldout import read_methods_csv

    run = load_run_analysis(analysed)
    assert run.methods is not None and "methods.csv" in run.files
    want = read_methods_csv(analysed / "methods.csv")
    assert run.methods.dtype == want.dtype
    for f in want.dtype.names:
        np.testing.assert_array_equal(run.methods[f], want[f])


def test_compare_methods_of_loaded_runs_equals_that_of_their_folders(analysed, tmp_path):
    from nerve.analysis.compare import load_run_analysis
    from nerve.method_stage import compare_methods

    copy = tmp_path / "copy"
    shutil.copytree(analysed, copy)
    (copy / ".nerve.lock").unlink(missing_ok=True)
    by_folder = compare_methods([analysed, copy], tmp_path / "a")
    by_run = compare_methods([load_run_analysis(analysed), load_run_analysis(copy)], tmp_path / "b")
    assert by_run["files"] == by_folder["files"] and by_run["across"] == by_folder["across"]
    for name in ("methods_across_runs.csv", "methods_stability.csv", "methods_agreement_across_runs.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name


@pytest.fixture(scope="module")
def analysed_without_figures(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage") / "tables"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", METHODS, "--random-draws", "2",
            "--max-k", "5", "--no-figures", "--out", out, check=True)
    return out


def _figure_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".png", ".svg"))


def test_an_analysis_without_figures_writes_the_same_tables_and_no_figure(analysed, analysed_without_figures):
    assert not _figure_files(analysed_without_figures)
    tables = sorted(p.name for p in analysed.iterdir() if p.suffix in (".csv", ".tsv", ".txt"))
    assert "methods.csv" in tables and "ablation.csv" in tables
    for name in tables:
        assert (analysed_without_figures / name).read_bytes() == (analysed / name).read_bytes(), name


def test_a_run_analysis_records_the_per_sentence_counts_of_both_sweeps_and_they_sum_to_the_rows(analysed):
    from nerve.analysis.ablation import read_ablation_csv
    from nerve.analysis.heldout import read_methods_csv
    from nerve.analysis.sentence_counts import read_sentence_counts
    from nerve.folder import read_marker

    files = read_marker(analysed, "complete.json")["files"]
    assert "ablation_sentences.npz" in files and "methods_sentences.npz" in files
    held_out = read_methods_csv(analysed / "methods.csv")
    for name, rows in (("ablation_sentences.npz", read_ablation_csv(analysed / "ablation.csv")),
                       ("methods_sentences.npz", held_out[np.isin(held_out["method"], ["sensitivity", "random"])])):
        for counts in read_sentence_counts(analysed / name).values():
            assert counts.ks == [5] and counts.targets
            for z, target in enumerate(counts.targets):
                j = counts.tags.index(target)
                own = rows[(rows["target_tag"] == target) & (rows["eval_tag"] == target) & (rows["k"] == 5)]
                top, n = own["accuracy"][own["selection"] == "top"][0], counts.gold[:, j].sum()
                assert top == counts.top[0, z][:, j].sum() / n if n else np.isnan(top), (name, target)


def test_an_analysis_without_figures_has_another_fingerprint(analysed, analysed_without_figures):
    from nerve.folder import read_marker

    a, b = (read_marker(d, "complete.json") for d in (analysed, analysed_without_figures))
    assert a["components"]["options"]["figures"] == ["png", "svg"] and b["components"]["options"]["figures"] == []
    assert a["fingerprint"] != b["fingerprint"]


def test_plot_analysis_draws_from_the_tables_the_figures_the_analysis_would_have_drawn(
        analysed, analysed_without_figures, tmp_path):
    res = run_cli("plot", "analysis", analysed_without_figures, "--out", tmp_path / "figs", "--formats", "png,svg")
    assert res.returncode == 0, res.stderr  # the analysis' own formats (the default adds pdf: another test's)
    assert _figure_files(tmp_path / "figs") == _figure_files(analysed)
    assert "methods_agreement.png" in _figure_files(analysed) and "methods_curves_zero.svg" in _figure_files(analysed)
    for name in _figure_files(analysed):
        assert (tmp_path / "figs" / name).read_bytes() == (analysed / name).read_bytes(), name


def test_plot_analysis_writes_the_formats_asked_for(analysed_without_figures, tmp_path):
    run_cli("plot", "analysis", analysed_without_figures, "--out", tmp_path, "--formats", "svg", check=True)
    assert _figure_files(tmp_path) and all(n.endswith(".svg") for n in _figure_files(tmp_path))


def test_plot_analysis_of_a_folder_without_an_analysis_is_a_one_line_error(tmp_path):
    res = run_cli("plot", "analysis", tmp_path, "--out", tmp_path / "figs")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "expected an analysis folder" in res.stderr


def test_study_help_names_the_studys_default_methods():
    from nerve.cli_args import STUDY_METHODS_TEXT
    from nerve.study import STUDY_METHODS

    assert STUDY_METHODS_TEXT == ",".join(STUDY_METHODS)


def test_study_help_and_the_study_share_their_default_draws():
    from nerve.cli_args import STUDY_DRAWS as HELP_DRAWS
    from nerve.study.plan import STUDY_DRAWS, study_analysis

    spec = study_analysis()
    assert HELP_DRAWS == STUDY_DRAWS == (spec.judged_draws, spec.matched_draws)
    assert (study_analysis(methods=()).judged_draws, study_analysis(methods=()).matched_draws) == (0, 0)


@pytest.mark.parametrize("given,methods", [("none", []), ("probe,random", ["probe", "random"]), (None, None)])
def test_study_methods_option_reaches_the_study(monkeypatch, tmp_path, given, methods):
    import nerve.study
    from nerve.cli import main

    seen = {}
    monkeypatch.setattr(nerve.study, "study", lambda spec, *a: seen.update(spec=spec) or tmp_path / "report.html")
    args = ["study", "--data", str(tmp_path), "--out", str(tmp_path / "s")]
    assert main(args + (["--methods", given] if given else [])) == 0
    assert seen["spec"].analysis.methods == (nerve.study.STUDY_METHODS if methods is None else tuple(methods))


def test_study_with_an_unknown_method_is_a_one_line_error(tmp_path):
    res = run_cli("study", "--data", tmp_path, "--out", tmp_path / "s", "--methods", "sensitivty")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--methods sensitivty: unknown ranking method" in res.stderr


def test_a_comparison_of_one_method_has_stability_but_no_agreement_figure(tiny_run, tmp_path):
    one = tmp_path / "one"
    run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity",
            "--random-draws", "1", "--max-k", "2", "--no-figures", "--out", one, check=True)
    copy = tmp_path / "copy"
    shutil.copytree(one, copy)
    (copy / ".nerve.lock").unlink(missing_ok=True)
    from nerve.method_stage import compare_methods

    (tmp_path / "cmp").mkdir()
    compare_methods([one, copy], tmp_path / "cmp")
    assert (tmp_path / "cmp" / "methods_stability.png").is_file()
    assert not (tmp_path / "cmp" / "methods_agreement_mean.png").exists()
    assert not (one / "methods_agreement.csv").exists()


@pytest.fixture(scope="module")
def ranked_without_misc(tiny_run, tmp_path_factory):
    """Methods ranked on a file without a MISC token (gold bucket, so that the absence is certain)."""
    from tests.conftest import TINY

    d = tmp_path_factory.mktemp("nomisc")
    lines = (TINY / "valid.txt").read_text().splitlines()
    (d / "rank.txt").write_text("\n".join(" ".join([*ln.split()[:-1], "O"]) if ln.endswith("MISC") else ln
                                          for ln in lines) + "\n")
    res = run_cli("analyze", tiny_run, "--split", "test", "--rank-split", d / "rank.txt", "--bucket", "gold",
                  "--methods", "sensitivity,probeless", "--max-k", "3", "--no-figures",
                  "--out", d / "a", check=True)
    return d / "a", res


def test_a_tag_absent_from_the_ranking_split_is_neither_swept_nor_judged(ranked_without_misc):
    out, _ = ranked_without_misc
    summary = list(csv.DictReader((out / "methods_summary.csv").open()))
    assert summary and not [r for r in summary if r["target_tag"].endswith("MISC")]
    assert {r["target_tag"] for r in summary} >= {"B-PER", "B-LOC"}
    methods = list(csv.DictReader((out / "methods.csv").open()))
    assert methods and not [r for r in methods if r["target_tag"].endswith("MISC")]


def test_a_tag_absent_from_the_ranking_split_has_nan_scores_and_a_warning(ranked_without_misc):
    out, res = ranked_without_misc
    saved = read_method_scores(out / "methods_scores.npz")
    misc = [saved.tags.index(t) for t in ("B-MISC", "I-MISC")]
    for m in saved.methods:
        assert np.isnan(saved.scores[m][:, misc]).all() and np.isfinite(np.delete(saved.scores[m], misc, 1)).all()
    assert "nerve: warning: B-MISC, I-MISC: no token (gold tags) in the ranking split" in res.stderr


def test_a_tag_absent_from_the_ranking_split_still_counts_among_the_other_tags(ranked_without_misc):
    out, _ = ranked_without_misc
    from nerve.analysis.heldout import read_methods_csv
    from nerve.analysis.judging import judge_methods

    rows = read_methods_csv(out / "methods.csv")
    evals = list(dict.fromkeys(rows["eval_tag"].tolist()))
    others = [t for t in evals[:evals.index("ALL")] if t != "B-PER"]
    judged = {(x["method"], x["k"]): x for x in judge_methods(rows, ks=(1, 2, 3))
              if x["target_tag"] == "B-PER" and x["score"] == "f1"}
    checked = 0
    for (method, k), r in judged.items():
        sel = rows[(rows["method"] == method) & (rows["target_tag"] == "B-PER")]
        drops = {}
        for t in others:
            at = sel[sel["eval_tag"] == t]
            base = at["f1"][at["k"] == 0][0]
            if not np.isnan(base):
                drops[t] = base - at["f1"][at["k"] == k][0]
        without = np.mean([d for t, d in drops.items() if not t.endswith("MISC")])
        assert r["others_mean_drop"] == pytest.approx(np.mean(list(drops.values())))
        checked += r["others_mean_drop"] != pytest.approx(without)
    assert checked  # some judgement where leaving MISC out would change the others' mean


def test_the_methods_stage_shows_its_progress_on_stderr(tiny_run, tmp_path):
    res = run_cli("analyze", tiny_run, "--split", "test", "--rank-split", "dev", "--methods", "sensitivity,probeless",
                  "--max-k", "2", "--random-draws", "1", "--no-figures", "--out", tmp_path / "a", check=True)
    assert "methods: scoring" in res.stderr and "ablation" in res.stderr
