"""Every figure nerve draws tells its series apart, names them meaningfully, and shares its scales where panels are
compared; figures are written as 300-dpi PNG, SVG and PDF carrying their caption."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_synthetic import make_arrays, sweep

from nerve.analysis.ablation import write_ablation_csv
from nerve.analysis.heldout import RANDOM, method_dtype
from nerve.analysis.sensitivity import sensitivity
from nerve.report import figures as F
from nerve.report import plots
from nerve.report.ablation_figures import run_labels
from nerve.report.method_drop_figures import plot_method_curves, plot_method_drops
from nerve.report.method_figures import plot_method_agreement, plot_method_stability

METHODS = ("sensitivity", "probeless", "selectivity", "gradxact", "ig")


def series_clashes(fig) -> list[tuple]:
    """(axes title, label, label) of every two labelled lines of one Axes drawn alike: the same colour, line style
    (dash pattern included) and marker."""
    from matplotlib.colors import to_hex

    clashes = []
    for ax in fig.axes:
        seen = {}
        for line in ax.get_lines():
            label = line.get_label()
            if not label or label.startswith("_"):
                continue
            key = (to_hex(line.get_color()), line.get_linestyle(), str(line._unscaled_dash_pattern),
                   str(line.get_marker()))
            if key in seen:
                clashes.append((ax.get_title(), seen[key], label))
            seen[key] = label
    return clashes


@pytest.fixture(scope="module")
def synthetic():
    """A synthetic analysis of 5 tags: arrays, sensitivities, rankings, ablation rows and methods.csv-like rows."""
    a = make_arrays(n_tokens=300, n=8, n_sentences=20, seed=1)
    s = sensitivity(a["h"], a["W"], a["pred"])
    rows, rankings = sweep(a, max_k=6, draws=4)
    return a, s, rankings, rows, _method_rows(rows)


def _method_rows(rows: np.ndarray) -> np.ndarray:
    """methods.csv-like rows from a base sweep: each method's rows are the top-k rows, shifted by a method-specific
    amount, and the random rows are the random method's."""
    parts = []
    for i, m in enumerate((*METHODS, RANDOM)):
        sel = rows[rows["selection"] == ("random" if m == RANDOM else "top")]
        out = np.empty(sel.size, dtype=method_dtype(16, 16))
        for name in sel.dtype.names:
            out[name] = sel[name]
        out["method"], out["ablate"], out["rank_split"], out["score_split"] = m, "zero", "dev", "test"
        if m != RANDOM:
            out["accuracy"] = np.clip(sel["accuracy"] - 0.01 * i * (sel["k"] > 0), 0, 1)
        parts.append(out)
    return np.concatenate(parts)


@pytest.fixture
def drawn(monkeypatch):
    """Every figure the plot functions hand to save_figure, with its caption; nothing is written."""
    captured = []
    monkeypatch.setattr(F, "save_figure", lambda fig, base, formats=None, caption="": captured.append(
        (base, fig, caption)) or [])
    return captured


def _draw_everything(synthetic, tmp_path) -> None:
    a, s, rankings, rows, mrows = synthetic
    tags, neurons = a["tags"].tolist(), a["neurons"].tolist()
    plots.plot_sensitivity_heatmap(s, tags, neurons, tmp_path / "h", cluster=True)
    plots.plot_ranking_table(s, rankings, tags, neurons, tmp_path / "r")
    plots.plot_ablation_targets(rows, tags, [tmp_path / t for t in tags], "ranked and ablated on dev")
    plots.plot_ablation_grid(rows, tmp_path / "g", "ranked and ablated on dev")
    plots.plot_per_tag_accuracy({t: 0.5 for t in tags} | {"ALL": 0.9, "F1": 0.7}, tmp_path / "bars")
    runs = []
    for name in ("base", "crf"):
        (tmp_path / name / "seed1" / "analysis").mkdir(parents=True)
        runs.append(tmp_path / name / "seed1" / "analysis" / "ablation.csv")
        write_ablation_csv(runs[-1], rows)
    plots.plot_ablation_overlay(runs, None, tags[1], tmp_path / "overlay")
    M = np.corrcoef(s.T)
    plots.plot_tag_matrix(M, tags, tmp_path / "m", "Correlation of tag sensitivities over units\nmean over 2 run(s)",
                          label="Pearson r")
    plots.plot_tag_matrix(np.full((len(tags),) * 2, 3.0), tags, tmp_path / "o", "Shared units", signed=False,
                          vmax=5, label="shared units")
    drops = np.linspace(-0.1, 0.4, len(METHODS) * len(tags)).reshape(len(METHODS), len(tags))
    plot_method_drops(list(METHODS), tags, drops, tmp_path / "d", "Drop of each tag's recall at k = 5: ranked on "
                      "dev, scored on test, zero ablation (softmax decoding)")
    plot_method_curves(mrows, "zero", tmp_path / "c", "Own drop by k: ranked on dev, scored on test, zero ablation")
    plot_method_agreement(list(METHODS), np.full((5, 5), 2.0), 5, tmp_path / "ag", "Shared units\n(mean)")
    plot_method_stability(list(METHODS), tags, np.full((5, len(tags)), 2.0), 5, tmp_path / "st", "Stability")


def test_every_figure_tells_every_series_apart(synthetic, tmp_path, drawn):
    _draw_everything(synthetic, tmp_path)
    assert len(drawn) == 4 + 5 + 1 + 2 + 4  # heatmap, table, grid, bars; a chart per tag; overlay; matrices; methods
    for base, fig, _ in drawn:
        assert series_clashes(fig) == [], base


def test_the_series_check_catches_two_lines_drawn_alike():
    """The check above can fail: the old ablation chart drew F1:LOC and F1:PER as two grey solid lines."""
    fig = F.new_figure(3, 2)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color=F.GREY, ls="-", label="F1:LOC")
    ax.plot([0, 1], [1, 0], color=F.GREY, ls="-", label="F1:PER")
    ax.plot([0, 1], [1, 1], color=F.GREY, ls="-", marker="o", label="F1:ORG")
    assert series_clashes(fig) == [("", "F1:LOC", "F1:PER")]


def test_every_figure_has_a_caption_naming_what_is_drawn(synthetic, tmp_path, drawn):
    _draw_everything(synthetic, tmp_path)
    for base, _, caption in drawn:
        assert len(caption) > 80 and caption.endswith("."), (base, caption)
        assert ".png" not in caption and "_" not in caption, (base, caption)


def test_drops_are_labelled_with_one_term_and_one_sign_everywhere(synthetic, tmp_path, drawn):
    """No figure says "accuracy change" or "own drop"; every drop axis says which score and that positive is worse."""
    _draw_everything(synthetic, tmp_path)
    for base, fig, caption in drawn:
        texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
        words = " ".join([*texts, caption]).lower()
        assert "accuracy change" not in words and "own drop" not in words, base
        labels = [ax.get_ylabel() for ax in fig.axes] + [fig._supylabel.get_text() if fig._supylabel else ""]
        for label in labels:
            if "drop" in label.lower():
                assert label.lower().startswith("drop in ") and "positive = worse" in label.replace("\n", " "), (
                    base, label)


def test_ablation_charts_put_the_entity_f1_apart_from_the_tags_recall(synthetic, tmp_path, drawn):
    a, _, _, rows, _ = synthetic
    plots.plot_ablation_target(rows, str(a["tags"][0]), tmp_path / "t")
    (_, fig, _), = drawn
    top, bottom = fig.axes[:2]
    assert "drop in recall" in top.get_ylabel() and "drop in entity F1" in bottom.get_ylabel()
    tops = [ln.get_label() for ln in top.get_lines() if not ln.get_label().startswith("_")]
    bottoms = [ln.get_label() for ln in bottom.get_lines() if not ln.get_label().startswith("_")]
    assert not any("F1" in t for t in tops) and all("F1" in b or "ALL" in b for b in bottoms)
    assert top.get_ylim() == bottom.get_ylim()


def test_small_multiples_share_their_y_axis(synthetic, tmp_path, drawn):
    _, _, _, rows, mrows = synthetic
    plots.plot_ablation_grid(rows, tmp_path / "g")
    plot_method_curves(mrows, "zero", tmp_path / "c", "x: ranked on dev")
    for _, fig, _ in drawn:
        limits = {ax.get_ylim() for ax in fig.axes if ax.axison}
        assert len(limits) == 1


def test_every_heatmap_has_a_colour_bar(synthetic, tmp_path, drawn):
    _draw_everything(synthetic, tmp_path)
    for base, fig, _ in drawn:
        if any(ax.images for ax in fig.axes):
            assert any(ax.get_label() == "<colorbar>" for ax in fig.axes), base


def test_drop_heatmaps_share_one_colour_scale(tmp_path, drawn):
    plot_method_drops(["a", "b"], ["B-X", "O"], np.array([[0.1, 0.0], [0.0, 0.05]]), tmp_path / "small", "small")
    plot_method_drops(["a", "b"], ["B-X", "O"], np.array([[0.9, 0.0], [-0.4, 0.5]]), tmp_path / "large", "large")
    scales = [next(im.norm for ax in fig.axes for im in ax.images) for _, fig, _ in drawn]
    assert [(n.vmin, n.vmax) for n in scales] == [(-1.0, 1.0), (-1.0, 1.0)]


def test_the_overlay_legend_names_each_run_and_selection(synthetic, tmp_path, drawn):
    a, _, _, rows, _ = synthetic
    paths = []
    for name in ("base", "crf"):
        (tmp_path / name / "seed1" / "analysis").mkdir(parents=True)
        paths.append(tmp_path / name / "seed1" / "analysis" / "ablation.csv")
        write_ablation_csv(paths[-1], rows)
    tag = str(a["tags"][1])
    plots.plot_ablation_overlay(paths, None, tag, tmp_path / "overlay.pdf")
    (_, fig, _), = drawn
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == [f"base/seed1: top k units of {tag}", "base/seed1: k random units (mean of 4 draws)",
                      f"crf/seed1: top k units of {tag}", "crf/seed1: k random units (mean of 4 draws)"]


def test_run_labels_take_as_many_folders_as_tell_the_runs_apart(tmp_path):
    assert run_labels([tmp_path / "seed1" / "analysis" / "ablation.csv",
                       tmp_path / "seed2" / "analysis" / "ablation.csv"]) == ["seed1", "seed2"]
    assert run_labels([tmp_path / "a" / "seed1" / "ablation.csv",
                       tmp_path / "b" / "seed1" / "ablation.csv"]) == ["a/seed1", "b/seed1"]
    assert run_labels([tmp_path / "x" / "ablation.csv"] * 2) == ["x (1)", "x (2)"]


def test_save_figure_writes_a_300_dpi_png_an_svg_and_a_pdf_that_carry_the_caption(tmp_path):
    from PIL import Image

    fig = F.new_figure(2, 1.5)
    fig.subplots().plot([0, 1], [1, 0])
    caption = "A line falling from 1 to 0 (k = 0 minus after; positive = worse)."
    paths = F.save_figure(fig, tmp_path / "f", caption=caption)
    assert [p.name for p in paths] == ["f.png", "f.svg", "f.pdf"]
    with Image.open(paths[0]) as img:
        assert img.size == (600, 450) and round(img.info["dpi"][0]) == 300
    assert F.read_caption(paths[0]) == caption
    assert caption in paths[1].read_text() and paths[2].read_bytes().startswith(b"%PDF")


def test_a_figure_saved_twice_gives_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        fig = F.new_figure(2, 1.5)
        fig.subplots().plot([0, 1], [1, 0])
        F.save_figure(fig, tmp_path / name, caption="same")
    for ext in ("png", "svg", "pdf"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes(), ext


def test_figure_formats_refuse_an_unknown_format():
    with pytest.raises(ValueError, match="expected some of png, svg, pdf, got eps"):
        with F.figure_formats(["png", "eps"]):
            pass
