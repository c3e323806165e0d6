"""The architecture grid: expansion into configs, NaN-aware cell summaries, the study's layout with missing cells,
and the findings × architecture table."""

import math

import numpy as np
import pytest

from nerve.errors import NerveError
from nerve.grid import PUBLISHED, assignment, cell_summary, layout_cells, short_label, study_layout
from nerve.report.grid_section import findings_by_variant, grid_table, layout_table
from nerve.study import StudySpec, parse_cell_sets, parse_grid, plan

GRID = [("model.char", ["none", "lstm", "cnn"]), ("model.encoder", ["lstm", "cnn"]),
        ("model.decoder", ["softmax", "crf"])]


def _plan(out, seeds, settings, grid, cells=()):
    spec = StudySpec("tests/fixtures/tiny.toml", "tests/fixtures/tiny", str(out), seeds, tuple(settings), tuple(grid),
                     tuple(cells))
    return plan(spec)


def test_train_seed_as_a_grid_key_is_refused_naming_the_option():
    with pytest.raises(NerveError, match=r"--grid 'train.seed=1,2': train.seed cannot be a grid key"):
        parse_grid(["train.seed=1,2"])


def run(test_f1, per_tag, seconds=10.0):
    return {"test_f1": test_f1, "dev_f1": test_f1, "per_tag_accuracy": per_tag, "train_seconds": seconds}


def test_study_grid_expands_into_12_configs_per_seed(tmp_path):
    grid = ["model.char=none,lstm,cnn", "model.encoder=lstm,cnn", "model.decoder=softmax,crf"]
    jobs = _plan(tmp_path, 2, ["model.hidden=8"], grid)
    assert len(jobs) == 24 and len({j.variant for j in jobs}) == 12
    seen = {(j.config().model.char, j.config().model.encoder, j.config().model.decoder) for j in jobs}
    assert seen == set(PUBLISHED)
    job = next(j for j in jobs if j.variant == "char=cnn,encoder=lstm,decoder=crf" and j.seed == jobs[1].seed)
    cfg = job.config()
    assert (cfg.model.char, cfg.model.encoder, cfg.model.decoder, cfg.model.hidden, cfg.train.seed) == \
        ("cnn", "lstm", "crf", 8, jobs[1].seed)


def test_cell_set_applies_only_to_the_cells_it_names_after_the_grid_values(tmp_path):
    grid = ["model.char=none,cnn", "model.encoder=lstm,cnn"]
    cells = ["model.encoder=cnn:train.lr=0.1", "model.encoder=cnn:train.ave_batch_loss=true"]
    jobs = _plan(tmp_path, 1, ["train.lr=0.02"], grid, cells)
    for job in jobs:
        cfg, cnn = job.config(), "encoder=cnn" in job.variant
        assert (cfg.train.lr, cfg.train.ave_batch_loss) == ((0.1, True) if cnn else (0.02, False)), job.variant
        assert job.recipe == (["train.lr=0.1", "train.ave_batch_loss=true"] if cnn else [])


def test_the_same_setting_from_two_cell_sets_is_one_recipe_item(tmp_path):
    grid = ["model.char=none,cnn", "model.encoder=lstm,cnn"]
    jobs = _plan(tmp_path, 1, [], grid, ["model.encoder=cnn:train.lr=0.1", "model.char=cnn:train.lr=0.1"])
    assert [j.recipe for j in jobs] == [[], ["train.lr=0.1"], ["train.lr=0.1"], ["train.lr=0.1"]]


def test_two_cell_sets_giving_one_cell_different_values_are_refused(tmp_path):
    grid = ["model.char=none,cnn", "model.encoder=lstm,cnn"]
    cells = ["model.encoder=cnn:train.lr=0.1", "model.char=cnn:train.lr=0.3"]
    with pytest.raises(NerveError, match=r"char=cnn,encoder=cnn: --cell-set items give train.lr different values: "
                                         r"train.lr=0.1, train.lr=0.3"):
        _plan(tmp_path, 1, [], grid, cells)


def test_cell_set_leaves_the_other_cells_fingerprints_as_without_it(tmp_path):
    grid = ["model.encoder=lstm,cnn"]
    plain = _plan(tmp_path, 1, [], grid)
    recipe = _plan(tmp_path, 1, [], grid, ["model.encoder=cnn:train.lr=0.3"])
    assert [a.fingerprint == b.fingerprint for a, b in zip(plain, recipe)] == [True, False]


@pytest.mark.parametrize("item, says", [
    ("model.encoder:train.lr=0.1", "expected GRIDKEY=VALUE:SECTION.KEY=VALUE"),
    ("model.encoder=cnn", "expected GRIDKEY=VALUE:SECTION.KEY=VALUE"),
    ("model.char=cnn:train.lr=0.1", "model.char is not a --grid key"),
    ("model.encoder=gru:train.lr=0.1", "'gru' is not one of the grid's values of model.encoder (lstm, cnn)"),
    ("model.encoder=cnn:train.lrr=0.1", "lrr"),
])
def test_a_bad_cell_set_is_a_one_line_error(item, says):
    with pytest.raises(NerveError, match=None) as e:
        parse_cell_sets([item], parse_grid(["model.encoder=lstm,cnn"]))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_layout_shows_a_cells_recipe():
    variants = {"char=none,encoder=cnn,decoder=crf": {"runs": [run(0.86, {})], "recipe": ["train.lr=0.1"]},
                "char=none,encoder=lstm,decoder=crf": {"runs": [run(0.87, {})], "recipe": []}}
    rows = layout_cells(variants, GRID)
    assert rows[3]["cells"][0]["recipe"] == ["train.lr=0.1"] and rows[1]["cells"][0]["recipe"] == []
    assert layout_table(variants, GRID).count("train.lr=0.1") == 1


def test_cell_mean_leaves_out_a_missing_tag_instead_of_counting_it_as_zero():
    c = cell_summary([run(0.8, {"B-X": 0.5, "I-X": None}), run(0.9, {"B-X": 0.7, "I-X": 0.6})])
    assert c["per_tag"]["I-X"] == (0.6, None, 1)
    assert c["per_tag"]["B-X"][0] == pytest.approx(0.6) and c["per_tag"]["B-X"][2] == 2


def test_cell_mean_leaves_out_a_nan_f1():
    c = cell_summary([run(float("nan"), {}), run(0.9, {}), run(0.7, {})])
    assert c["test_f1"][0] == pytest.approx(0.8) and c["test_f1"][2] == 2 and c["n_runs"] == 3


def test_grid_table_says_how_many_runs_a_value_has():
    page = grid_table({"a": {"runs": [run(0.8, {"B-X": 0.5, "I-X": math.nan}), run(0.9, {"B-X": 0.7, "I-X": 0.6})]}})
    assert "60.0 <span class=\"na\">(1 of 2)</span>" in page and "30.0" not in page


def test_layout_marks_a_cell_without_runs_and_sets_published_numbers_beside():
    variants = {"char=cnn,encoder=lstm,decoder=crf": {"runs": [run(0.905, {}), run(0.907, {})]}}
    rows = layout_cells(variants, GRID)
    assert [(r["word"], r["inference"]) for r in rows] == [("lstm", "softmax"), ("lstm", "crf"), ("cnn", "softmax"),
                                                          ("cnn", "crf")]
    crf = rows[1]["cells"]
    assert crf[2]["summary"]["test_f1"][0] == pytest.approx(0.906) and crf[2]["published"] == (90.33, 91.35)
    assert crf[0]["summary"] is None
    page = layout_table(variants, GRID)
    assert page.count("no run") == 11 and "90.60 ± 0.14" in page and "90.33 / 91.35" in page


def test_layout_is_only_drawn_for_the_studys_three_axes():
    assert study_layout(GRID) and not study_layout(GRID[:2])
    assert layout_table({}, GRID[:2]) == ""


def test_assignment_reads_a_variant_name():
    assert assignment("char=cnn,encoder=lstm,decoder=crf") == {"char": "cnn", "encoder": "lstm", "decoder": "crf"}
    assert assignment("base") == {}


def test_findings_by_variant_shows_each_verdict_and_share():
    f = {"number": 1, "id": "corr_B_I_same_type", "ablate": None, "verdict": "holds", "n_holding": 4, "n_cases": 4,
         "holds_runs": 2, "applicable_runs": 3}
    g = dict(f, verdict="not applicable", n_holding=0, n_cases=0)
    page = findings_by_variant({"A": {"findings": [f]}, "B": {"findings": [g]}})
    assert '<span class="yes">holds</span><small> 4/4</small><br><small class="na">2/3 runs</small>' in page
    assert '<span class="na">n/a</span><small></small>' in page


def test_findings_by_variant_labels_the_studys_cells_by_char_and_word():
    f = {"number": 1, "id": "corr_B_I_same_type", "ablate": None, "verdict": "inconclusive", "n_holding": 1,
         "n_cases": 4}
    page = findings_by_variant({"char=none,encoder=cnn,decoder=crf": {"findings": [f]}})
    assert "no char<br>CNN + CRF</th>" in page and 'title="inconclusive"><span class="">?</span>' in page
    assert short_label("char=lstm,encoder=lstm,decoder=softmax") == "char LSTM / LSTM" and short_label("a=1") == "a=1"


def test_grid_csv_has_one_row_per_variant_with_nan_aware_means_and_the_published_numbers():
    import csv
    import io

    from nerve.grid import grid_csv

    variants = {"char=cnn,encoder=lstm,decoder=crf": {"runs": [run(0.905, {}), run(math.nan, {}), run(0.907, {})],
                                                      "recipe": ["train.lr=0.1", "train.clip=5"]},
                "char=none,encoder=cnn,decoder=softmax": {"runs": [run(0.86, {})]}}
    rows = list(csv.DictReader(io.StringIO(grid_csv(variants))))
    assert [r["variant"] for r in rows] == list(variants)
    first, second = rows
    assert (first["char"], first["encoder"], first["decoder"], first["n_runs"], first["test_f1_n"]) == \
        ("cnn", "lstm", "crf", "3", "2")
    assert float(first["test_f1_mean"]) == pytest.approx(0.906) and float(first["study_f1"]) == 90.33
    assert first["recipe"] == "train.lr=0.1;train.clip=5" and second["recipe"] == "" and second["test_f1_sd"] == ""


def test_findings_csv_has_one_row_per_variant_and_finding():
    import csv
    import io

    from nerve.grid import findings_csv

    f = {"number": 9, "id": "ablation_top_beats_random", "ablate": "mean", "verdict": "holds", "n_holding": 7,
         "n_cases": 9, "holds_runs": 2, "applicable_runs": 3}
    rows = list(csv.DictReader(io.StringIO(findings_csv({"a=1": {"findings": [f]}, "a=2": {"findings": []}}))))
    assert rows == [{"variant": "a=1", "finding": "9", "id": "ablation_top_beats_random", "ablate": "mean",
                     "verdict": "holds", "n_holding": "7", "n_cases": "9", "holds_runs": "2", "applicable_runs": "3"}]


def test_findings_contrasts_say_where_a_finding_holds_and_where_it_is_contradicted():
    from nerve.report.grid_section import findings_contrasts

    def finding(verdict, runs):
        return {"number": 3, "id": "x", "ablate": None, "verdict": verdict, "n_holding": 1, "n_cases": 2,
                "description": "B-x and I-y are negatively correlated", "holds_runs": runs, "applicable_runs": 3}

    variants = {"char=none,encoder=lstm,decoder=crf": {"findings": [finding("holds", 3)]},
                "char=cnn,encoder=cnn,decoder=crf": {"findings": [finding("contradicted", 1)]},
                "char=lstm,encoder=cnn,decoder=softmax": {"findings": [finding("not applicable", 0)]}}
    text = findings_contrasts(variants)
    assert "<b>3</b> B-x and I-y are negatively correlated: holds in 1 of 2 architectures where it applies, and " \
           "held in every run of 1 (no char / LSTM + CRF); contradicted in char CNN / CNN + CRF; not applicable in " \
           "char LSTM / CNN." in text
    assert findings_contrasts({"a=1": {"findings": []}}) == ""


def test_a_cell_whose_runs_all_failed_is_a_row_of_grid_csv_and_says_failed_in_the_layout():
    import csv
    import io

    from nerve.grid import grid_csv

    ok = "char=none,encoder=lstm,decoder=crf"
    lost = "char=none,encoder=cnn,decoder=crf"
    failed = [{"variant": lost, "seed": s, "recipe": ["train.lr=0.3"], "error": "nan"} for s in (42, 43)]
    failed.append({"variant": ok, "seed": 44, "recipe": [], "error": "nan"})
    variants = {ok: {"runs": [run(0.87, {}), run(0.86, {})], "recipe": []}}
    rows = {r["variant"]: r for r in csv.DictReader(io.StringIO(grid_csv(variants, failed)))}
    assert (rows[ok]["n_runs"], rows[ok]["n_failed"]) == ("2", "1")
    assert (rows[lost]["n_runs"], rows[lost]["n_failed"], rows[lost]["recipe"]) == ("0", "2", "train.lr=0.3")
    page = layout_table(variants, GRID, failed)
    assert 'no run</span> <span class="no">(2 failed)</span>' in page and "(1 failed)" in page


def _grid_variants():
    """Twelve cells of a 3 × 2 × 2 grid whose finding-1 effect is 0.4 lower with a CRF (3 runs a cell)."""
    import itertools

    variants = {}
    rng = np.random.default_rng(0)
    for ch, en, de in itertools.product(("none", "lstm", "cnn"), ("lstm", "cnn"), ("softmax", "crf")):
        values = list(0.4 - 0.4 * (de == "crf") + rng.normal(0, 0.02) + rng.normal(0, 0.03, 3))
        cases = [{"key": "LOC", "runs": ["seed42", "seed43", "seed44"], "values": values, "sesoi": 0.1}]
        f = {"number": 1, "id": "corr_B_I_same_type", "ablate": None, "alpha": 0.05, "verdict": "inconclusive",
             "description": "B-x and I-x correlated", "n_holding": 0, "n_cases": 1, "holds_runs": 3,
             "applicable_runs": 3, "clauses": [{"statistic": "r − baseline", "cases": cases}]}
        variants[f"char={ch},encoder={en},decoder={de}"] = {
            "runs": [], "findings": [f], "recipe": ["train.lr=0.3"] if "cnn" in (ch, en) else []}
    return variants


def test_contrasts_csv_and_the_report_show_each_tested_contrast():
    import csv
    import io

    from nerve.grid import contrasts_csv, finding_contrasts
    from nerve.report.grid_section import findings_contrasts

    variants = _grid_variants()
    rows = list(csv.DictReader(io.StringIO(contrasts_csv(variants))))
    assert [(r["factor"], r["low"], r["high"]) for r in rows] == [
        ("char", "none", "lstm"), ("char", "none", "cnn"), ("char", "lstm", "cnn"), ("encoder", "lstm", "cnn"),
        ("decoder", "softmax", "crf"), ("recipe", "none", "train.lr=0.3")]
    dec = rows[4]
    assert (dec["finding"], dec["verdict"], dec["df"], dec["m"], dec["sesoi"], dec["n_cells"]) == \
        ("1", "holds", "6.0", "6", "0.1", "12")
    assert float(dec["ci_high"]) < -0.1 and float(dec["p_holm"]) < 0.05 and dec["test"] == "OLS on cell means, t(6)"
    assert dec["population"] == "architectures of this grid, trained with other seeds" and dec["confounded"] == ""
    ((label, _, text),) = finding_contrasts(variants)
    assert label == "1" and text.startswith("tested: char lstm − none: ")
    assert "decoder crf − softmax: −" not in text and "decoder crf − softmax: -0.4" in text
    assert "; run counts (a description): holds in 0 of 12 architectures" in text
    page = findings_contrasts(variants)
    assert "<th>p (Holm)</th>" in page and "crf − softmax" in page and '<span class="yes">holds</span>' in page
    assert "Where each finding holds, by architecture" in page and "<b>1</b> B-x and I-x correlated: holds in 0" in page
