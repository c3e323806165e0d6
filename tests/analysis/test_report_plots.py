"""Tests for nerve.report.plots: tag order, file names, and non-empty PNG + SVG figures at 5 and 25 tags."""

import pytest
from analysis_synthetic import make_arrays, sweep

from nerve.analysis.ablation import write_ablation_csv
from nerve.analysis.sensitivity import sensitivity
from nerve.report import plots

TAGS25 = [f"{p}-{t}" for t in ("ACTOR", "CHARACTER", "DIRECTOR", "GENRE", "PLOT", "RATING", "RATINGS_AVERAGE",
                                  "REVIEW", "SONG", "TITLE", "TRAILER", "YEAR") for p in "BI"] + ["O"]


def test_tag_order_groups_types_b_before_i_and_o_last():
    tags = ["O", "I-PER", "B-LOC", "I-LOC", "B-PER", "S-LOC", "E-LOC"]
    assert [tags[i] for i in plots.tag_order(tags)] == ["B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "O"]


def test_tag_filenames_are_safe_and_distinct():
    names = plots.tag_filenames(["B-A/B", "B-A_B", "I-X Y", "grid"], reserved=("grid",))
    assert names == {"B-A/B": "B-A_B", "B-A_B": "B-A_B_1", "I-X Y": "I-X_Y", "grid": "grid_1"}


def assert_written(paths):
    assert sorted(p.suffix for p in paths) == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.fixture(scope="module", params=[5, 25], ids=["5tags", "25tags"])
def analysis(request):
    tags = make_arrays()["tags"].tolist() if request.param == 5 else TAGS25
    a = make_arrays(n_tokens=300, n=60 if request.param == 25 else 8, tags=tags, n_sentences=20, seed=1)
    s = sensitivity(a["h"], a["W"], a["pred"])
    rows, rankings = sweep(a, max_k=6, draws=4)
    return a, s, rankings, rows


def test_heatmap_with_clustering(analysis, tmp_path):
    a, s, _, _ = analysis
    assert_written(plots.plot_sensitivity_heatmap(s, a["tags"].tolist(), a["neurons"].tolist(), tmp_path / "h", True))


def test_ranking_table(analysis, tmp_path):
    a, s, rankings, _ = analysis
    assert_written(plots.plot_ranking_table(s, rankings, a["tags"].tolist(), a["neurons"].tolist(), tmp_path / "r"))


def test_ablation_chart_of_one_target(analysis, tmp_path):
    a, _, _, rows = analysis
    assert_written(plots.plot_ablation_target(rows, str(a["tags"][0]), tmp_path / "a"))


def test_ablation_grid(analysis, tmp_path):
    _, _, _, rows = analysis
    assert_written(plots.plot_ablation_grid(rows, tmp_path / "g"))


def test_per_tag_accuracy_bars_with_a_missing_tag(analysis, tmp_path):
    a, _, _, _ = analysis
    acc = {t: 0.5 for t in a["tags"].tolist()} | {str(a["tags"][0]): None, "ALL": 0.9, "F1": 0.7}
    assert_written(plots.plot_per_tag_accuracy(acc, tmp_path / "bars"))


def test_overlay_of_two_runs(analysis, tmp_path):
    a, _, _, rows = analysis
    write_ablation_csv(tmp_path / "a.csv", rows)
    write_ablation_csv(tmp_path / "b.csv", rows)
    paths = plots.plot_ablation_overlay([tmp_path / "a.csv", tmp_path / "b.csv"], ["A", "B"], str(a["tags"][1]),
                                        tmp_path / "cmp.png")
    assert_written(paths)
    assert {p.name for p in paths} == {"cmp.png", "cmp.svg"}


def test_overlay_with_unknown_tag_raises(analysis, tmp_path):
    _, _, _, rows = analysis
    write_ablation_csv(tmp_path / "a.csv", rows)
    with pytest.raises(ValueError, match="no ablation rows for target tag 'B-NOPE'"):
        plots.plot_ablation_overlay([tmp_path / "a.csv"], ["A"], "B-NOPE", tmp_path / "cmp.png")
