"""Tests for nerve.report.plots: file names, and non-empty PNG + SVG figures at 5 and 25 tags."""

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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions save, captured (they are still written)."""
    figures = []
    save, save_chart = plots.save_figure, plots._TargetChart.save

    def capture(fig, base, **kw):
        figures.append(fig)
        return save(fig, base, **kw)

    def capture_chart(chart, content, base):
        paths = save_chart(chart, content, base)
        figures.append(chart.fig)
        return paths

    monkeypatch.setattr(plots, "save_figure", capture)
    monkeypatch.setattr(plots._TargetChart, "save", capture_chart)
    return figures


def test_figures_fit_their_canvas_and_legends_stay_off_the_axes(analysis, tmp_path, drawn):
    """Laid out without bbox_inches="tight": every artist inside the figure, no figure-level text over an axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    a, s, rankings, rows = analysis
    tags, neurons = a["tags"].tolist(), [f"lstm.backward_{i}" for i in range(len(a["neurons"]))]
    plots.plot_sensitivity_heatmap(s, tags, neurons, tmp_path / "h", cluster=True)
    plots.plot_ranking_table(s, rankings, tags, neurons, tmp_path / "r")
    plots.plot_ablation_targets(rows, tags[:2], [tmp_path / "a0", tmp_path / "a1"])
    plots.plot_ablation_grid(rows, tmp_path / "g")
    plots.plot_per_tag_accuracy({t: 0.5 for t in tags} | {"ALL": 0.9, "F1": 0.7}, tmp_path / "bars")
    write_ablation_csv(tmp_path / "a.csv", rows)
    plots.plot_ablation_overlay([tmp_path / "a.csv"] * 2, ["a run with a long name", "B"], tags[1], tmp_path / "c")
    assert len(drawn) == 7
    for fig in drawn:
        renderer = FigureCanvasAgg(fig).get_renderer()
        box, (w, h) = fig.get_tightbbox(renderer), fig.get_size_inches()
        assert -0.01 <= box.x0 and -0.01 <= box.y0 and box.x1 <= w + 0.01 and box.y1 <= h + 0.01, (box, w, h)
        panels = [ax.get_window_extent(renderer) for ax in fig.axes if ax.axison]
        for artist in fig.texts + fig.artists + fig.lines + fig.patches:
            extent = artist.get_window_extent(renderer)
            assert not any(extent.overlaps(p) for p in panels), artist


def test_png_writer_round_trips():
    from io import BytesIO

    import numpy as np
    from PIL import Image

    rgba = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    image = Image.open(BytesIO(plots._png(rgba, 150)))
    assert image.mode == "RGB" and image.size == (5, 7)
    assert round(image.info["dpi"][0]) == 150
    assert (np.asarray(image) == rgba[..., :3]).all()


def test_ablation_charts_do_not_depend_on_row_order(analysis, tmp_path):
    """Rows in any order (not grouped as a sweep writes them) give the same charts; SVG text stays text."""
    import numpy as np

    a, _, _, rows = analysis
    tags = a["tags"].tolist()[:3]
    shuffled = rows[np.random.default_rng(0).permutation(rows.size)]
    for name, r in (("sorted", rows), ("shuffled", shuffled)):
        (tmp_path / name).mkdir()
        plots.plot_ablation_targets(r, tags, [tmp_path / name / t for t in tags])
        plots.plot_ablation_grid(r, tmp_path / name / "grid")
    for stem in tags + ["grid"]:
        for ext in (".png", ".svg"):
            assert (tmp_path / "sorted" / (stem + ext)).read_bytes() == (tmp_path / "shuffled" / (stem + ext)).read_bytes()
    svg = (tmp_path / "sorted" / (tags[0] + ".svg")).read_text()
    assert f">Ablating the top units of {tags[0]}</text>" in svg


def test_ablation_targets_checks_its_arguments(analysis, tmp_path):
    _, _, _, rows = analysis
    with pytest.raises(ValueError, match="one output path per target"):
        plots.plot_ablation_targets(rows, ["O"], [])
    with pytest.raises(ValueError, match="no ablation rows for target tag 'B-NOPE'"):
        plots.plot_ablation_targets(rows, ["B-NOPE"], [tmp_path / "x"])


def test_blitted_target_charts_equal_full_draws(analysis, tmp_path, drawn):
    """The per-target PNGs redraw only what changes (over a saved background): pixel-identical to a full draw."""
    from io import BytesIO

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    a, _, _, rows = analysis
    tags = a["tags"].tolist()[:3]
    plots.plot_ablation_targets(rows, tags, [tmp_path / t for t in tags])
    canvas = FigureCanvasAgg(drawn[-1])  # the chart figure, still showing the last target
    canvas.draw()
    full = np.asarray(canvas.buffer_rgba())[..., :3]
    assert (np.asarray(Image.open(BytesIO((tmp_path / f"{tags[-1]}.png").read_bytes()))) == full).all()
