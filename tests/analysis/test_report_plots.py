"""Tests for nerve.report.plots: file names, and non-empty PNG + SVG + PDF figures at 5 and 25 tags."""

import pytest
from analysis_synthetic import make_arrays, sweep

from nerve.analysis.ablation import write_ablation_csv
from nerve.analysis.sensitivity import sensitivity
from nerve.report import plots

TAGS25 = [f"{p}-{t}" for t in ("ACTOR", "CHARACTER", "DIRECTOR", "GENRE", "PLOT", "RATING", "RATINGS_AVERAGE",
                                  "REVIEW", "SONG", "TITLE", "TRAILER", "YEAR") for p in "BI"] + ["O"]


def test_tag_filenames_are_safe_and_distinct():
    names = plots.tag_filenames(["B-A/B", "B-A_B", "I-X Y", "grid"], reserved=("grid",))
    assert names == {"B-A/B": "B-A_B", "B-A_B": "B-A_B_1", "I-X Y": "I-X_Y", "grid": "grid_1"}


def assert_written(paths):
    assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
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
                                        tmp_path / "cmp")
    assert_written(paths)
    assert {p.name for p in paths} == {"cmp.png", "cmp.svg", "cmp.pdf"}  # no suffix: every format
    one = plots.plot_ablation_overlay([tmp_path / "a.csv"], ["A"], str(a["tags"][1]), tmp_path / "one.svg")
    assert [p.name for p in one] == ["one.svg"]  # a suffix: that format alone


def test_overlay_with_unknown_tag_raises(analysis, tmp_path):
    _, _, _, rows = analysis
    write_ablation_csv(tmp_path / "a.csv", rows)
    with pytest.raises(ValueError, match="no ablation rows for target tag 'B-NOPE'"):
        plots.plot_ablation_overlay([tmp_path / "a.csv"], ["A"], "B-NOPE", tmp_path / "cmp.png")


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions save, captured instead of written, laid out as save_figure lays them out
    before it draws (the test's draw is then the draw of the first file)."""
    from nerve.report import figures as F

    captured = []

    def capture(fig, base, **kwargs):
        captured.append(fig)
        F.lay_out(fig)
        return []

    monkeypatch.setattr(F, "save_figure", capture)
    return captured


def _inside(extent, w_px, h_px, what):
    assert extent.x0 >= -1 and extent.y0 >= -1 and extent.x1 <= w_px + 1 and extent.y1 <= h_px + 1, (what, extent,
                                                                                                      w_px, h_px)


def _texts(fig):
    """Every text a reader needs: titles, axis labels, tick labels (of every axes, colour bars included)."""
    out = [(f"suptitle {fig._suptitle.get_text()!r}", fig._suptitle)] if fig._suptitle else []
    out += [(f"sup label {t.get_text()!r}", t) for t in (fig._supxlabel, fig._supylabel) if t is not None]
    for ax in fig.axes:
        if not ax.axison:
            continue
        out += [(f"title {t.get_text()!r}", t) for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
        out += [(f"label {t.get_text()!r}", t) for t in (ax.xaxis.label, ax.yaxis.label) if t.get_text()]
        for axis, lim, at in ((ax.xaxis, ax.get_xlim(), 0), (ax.yaxis, ax.get_ylim(), 1)):
            lo, hi = min(lim), max(lim)  # matplotlib draws only the ticks inside the view limits
            out += [(f"tick {t.get_text()!r}", t) for t in axis.get_ticklabels()
                    if t.get_text() and t.get_visible() and lo - 1e-9 <= t.get_position()[at] <= hi + 1e-9]
    return out


def test_every_figure_kind_keeps_titles_labels_and_colour_bars_inside_its_canvas(analysis, tmp_path, drawn):
    """Rendered and read back: the bounding box of every title, axis label, tick label, colour bar and legend
    lies inside the figure, and each figure has a title."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    a, s, rankings, rows = analysis
    tags, neurons = a["tags"].tolist(), [f"lstm.backward_{i}" for i in range(len(a["neurons"]))]
    plots.plot_sensitivity_heatmap(s, tags, neurons, tmp_path / "h", cluster=True)
    plots.plot_sensitivity_heatmap(s, tags, neurons, tmp_path / "h2", cluster=False)
    plots.plot_ranking_table(s, rankings, tags, neurons, tmp_path / "r")
    plots.plot_ablation_targets(rows, tags[:2], [tmp_path / "a0", tmp_path / "a1"])
    plots.plot_ablation_grid(rows, tmp_path / "g")
    plots.plot_per_tag_accuracy({t: 0.5 for t in tags} | {"ALL": 0.9, "F1": 0.7}, tmp_path / "bars")
    write_ablation_csv(tmp_path / "a.csv", rows)
    plots.plot_ablation_overlay([tmp_path / "a.csv"] * 2, ["a run with a long name", "B"], tags[1], tmp_path / "c")
    M = np.corrcoef(s.T)
    plots.plot_tag_matrix(M, tags, tmp_path / "m", "Correlation of tag sensitivities over units\nseed42",
                          label="Pearson r")
    plots.plot_tag_matrix(np.full((len(tags),) * 2, 3.0), tags, tmp_path / "o", "Shared units", signed=False,
                          vmax=10, label="shared units")
    assert len(drawn) == 10
    for fig in drawn:
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        w, h = fig.bbox.width, fig.bbox.height
        texts = _texts(fig)
        assert any(what.startswith(("title", "suptitle")) for what, _ in texts), "figure without a title"
        for what, t in texts:
            _inside(t.get_window_extent(renderer), w, h, what)
        for ax in fig.axes:  # colour bars are axes of their own
            if ax.axison:
                _inside(ax.get_tightbbox(renderer), w, h, f"axes {ax.get_label()!r}")
        for legend in fig.legends:
            _inside(legend.get_window_extent(renderer), w, h, "legend")
        box = fig.get_tightbbox(renderer)
        W, H = fig.get_size_inches()
        assert box.x0 >= -0.01 and box.y0 >= -0.01 and box.x1 <= W + 0.01 and box.y1 <= H + 0.01, (box, W, H)


def test_a_clipped_title_is_caught_by_the_bounding_box_check():
    """The check above can fail: a title pushed outside the canvas is reported."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.95))
    ax.set_title("a title above the canvas")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    with pytest.raises(AssertionError):
        _inside(ax.title.get_window_extent(renderer), fig.bbox.width, fig.bbox.height, "title")


def test_ablation_charts_do_not_depend_on_row_order(tmp_path):
    """Rows in any order (not grouped as a sweep writes them) give the same charts; SVG text stays text."""
    import numpy as np

    a = make_arrays(n_tokens=300, n=8, n_sentences=20, seed=1)
    rows, _ = sweep(a, max_k=6, draws=4)
    tags = a["tags"].tolist()[:3]
    shuffled = rows[np.random.default_rng(0).permutation(rows.size)]
    for name, r in (("sorted", rows), ("shuffled", shuffled)):
        (tmp_path / name).mkdir()
        plots.plot_ablation_targets(r, tags, [tmp_path / name / t for t in tags])
        plots.plot_ablation_grid(r, tmp_path / name / "grid")
    for stem in tags + ["grid"]:
        for ext in (".png", ".svg", ".pdf"):
            name = stem + ext
            assert (tmp_path / "sorted" / name).read_bytes() == (tmp_path / "shuffled" / name).read_bytes()
    svg = (tmp_path / "sorted" / (tags[0] + ".svg")).read_text()
    assert f">Ablating the top units of {tags[0]}</text>" in svg


def test_ablation_targets_checks_its_arguments(analysis, tmp_path):
    _, _, _, rows = analysis
    with pytest.raises(ValueError, match="one output path per target"):
        plots.plot_ablation_targets(rows, ["O"], [])
    with pytest.raises(ValueError, match="no ablation rows for target tag 'B-NOPE'"):
        plots.plot_ablation_targets(rows, ["B-NOPE"], [tmp_path / "x"])


def test_a_figure_function_builds_no_figure_where_no_format_is_in_use(analysis, tmp_path, monkeypatch):
    """Inside figure_formats(()) (tables only, e.g. a study's --no-figures comparison) a figure function returns []
    without laying out a figure that would be written nowhere."""
    import nerve.report.figures as figures

    _, _, _, rows = analysis
    built = []
    monkeypatch.setattr(figures.Figure, "__init__", lambda self, *a, **k: built.append(1) or None)
    with plots.figure_formats(()):
        assert plots.plot_ablation_grid(rows, tmp_path / "g") == []
    assert built == [] and list(tmp_path.iterdir()) == []
