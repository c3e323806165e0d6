"""Figures of one analysed run's units: the sensitivity heatmap, the ranking table and the per-tag accuracy."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nerve.report import figures
from nerve.report.figures import colours, diverging_cmap, every_kth, font_size, new_figure, symmetric_norm
from nerve.report.formats import when_drawn
from nerve.tags import tag_order

SENSITIVITY = ("sensitivity: W[tag, unit] × (the unit's mean on tokens labelled the tag − its mean on the other "
               "tokens); positive = the unit pushes the tag's logit up where the tag occurs")


@when_drawn
def plot_sensitivity_heatmap(s: np.ndarray, tags: Sequence[str], neurons: Sequence[str],
                             out_base: str | os.PathLike, cluster: bool = False, *,
                             title: str = "Unit sensitivity per tag", where: str = "") -> list[Path]:
    """Heatmap of sensitivities, units (rows) x tags (columns, ``tag_order``), RdBu_r centred at 0.

    Args:
        s: (n, n_tags) sensitivities (NaN columns drawn grey).
        tags: (n_tags,) names; neurons: (n,) unit names.
        out_base: output path without suffix (.png and .svg are written).
        cluster: order units by average-linkage hierarchical clustering (scipy), dendrogram on the left.
        title: the figure's title (say which split and labels it was computed from).
        where: the split and labels in words (e.g. "test split, predicted labels"), for the caption.
    """
    s = np.asarray(s, dtype=np.float64)
    n, n_tags = s.shape
    order = tag_order(tags)
    data = s[:, order]
    ax_h = float(np.clip(0.16 * n - 0.4, 2.0, 22.0))
    fig = new_figure(max(4.5, 2.6 + 0.42 * n_tags + (1.2 if cluster else 0.0)), ax_h + 1.6)
    rows = np.arange(n)
    if cluster and n >= 2:
        from scipy.cluster.hierarchy import dendrogram, linkage

        dax, ax = fig.subplots(1, 2, width_ratios=[1.2, 0.42 * n_tags], gridspec_kw={"wspace": 0.0})
        tree = dendrogram(linkage(np.nan_to_num(data), method="average", metric="euclidean"), orientation="left",
                          no_labels=True, ax=dax, color_threshold=0, above_threshold_color="#555555")
        rows = np.asarray(tree["leaves"])[::-1]  # leaf 0 is at the bottom of the dendrogram
        dax.set_axis_off()
    else:
        ax = fig.subplots()
    img = ax.imshow(data[rows], aspect="auto", cmap=diverging_cmap(), norm=symmetric_norm(data),
                    interpolation="none")
    yfont, xfont = font_size(n, 9, 5, 120), font_size(n_tags, 10, 7, 30)
    yt = every_kth(n, ax_h, yfont)
    ax.set_yticks(yt, [str(neurons[i]) for i in rows[yt]], fontsize=yfont)
    ax.set_xticks(np.arange(n_tags), [str(tags[j]) for j in order], fontsize=xfont, rotation=90)
    ax.set_xlabel("tag", fontsize=10)
    ax.set_ylabel("unit" + (" (clustered)" if cluster else ""), fontsize=10)
    fig.suptitle(title, fontsize=11)
    cbar = fig.colorbar(img, ax=ax, shrink=min(1.0, 4.0 / ax_h) if ax_h > 4 else 1.0, pad=0.02)
    cbar.set_label("sensitivity (red: positive)", fontsize=9)
    cbar.ax.tick_params(labelsize=8)
    caption = (f"Every unit (rows{', ordered by clustering their profiles' if cluster else ''}) against every tag "
               f"(columns): its {SENSITIVITY}" + (f"; {where}" if where else "") + ". Grey: undefined.")
    return figures.save_figure(fig, out_base, caption=caption)


@when_drawn
def plot_ranking_table(s: np.ndarray, rankings: np.ndarray, tags: Sequence[str], neurons: Sequence[str],
                       out_base: str | os.PathLike, top: int = 10, where: str = "") -> list[Path]:
    """Table of the ``top`` most important units per tag (columns in ``tag_order``), cells coloured by sensitivity
    on the heatmap's scale (that of all of ``s``), with its colour bar; ``where`` names the split in the caption.

    Args:
        s: (n, n_tags) sensitivities; rankings: int (n_tags, n) from ``rank_units``.
        tags, neurons: names; out_base: output path without suffix.
    """
    s = np.asarray(s, dtype=np.float64)
    order = tag_order(tags)
    k = min(top, s.shape[0])
    units = np.asarray(rankings)[order, :k].T  # shape: (k, n_tags)
    vals = s[units, np.asarray(order)[None, :]]
    n_tags = len(order)
    fig = new_figure(1.0 + 1.05 * n_tags, 1.5 + 0.42 * max(k, 1))
    ax = fig.subplots()
    norm = symmetric_norm(s)  # the sensitivity heatmap's scale
    img = ax.imshow(vals, aspect="auto", cmap=diverging_cmap(), norm=norm, interpolation="none")
    font = 7.0 if max((len(str(x)) for x in neurons), default=1) <= 9 else 6.0
    with np.errstate(invalid="ignore"):
        dark = np.isfinite(vals) & (np.abs(np.ma.filled(norm(vals), 0.5) - 0.5) > 0.35)
    for r in range(k):
        for c in range(n_tags):
            text = f"{neurons[units[r, c]]}\n{vals[r, c]:+.3g}" if np.isfinite(vals[r, c]) else "–"
            ax.text(c, r, text, ha="center", va="center", fontsize=font,
                    color="white" if dark[r, c] else "black")
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(n_tags), [str(tags[j]) for j in order], fontsize=8, rotation=90)
    ax.set_yticks(np.arange(k), [str(i + 1) for i in range(k)], fontsize=8)
    ax.set_ylabel("rank", fontsize=9)
    fig.suptitle(f"Top {k} units per tag (unit, sensitivity)", fontsize=10)
    cbar = fig.colorbar(img, ax=ax, fraction=0.04, pad=0.02)
    cbar.set_label("sensitivity (red: positive)", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    caption = (f"Each tag's {k} highest-ranked units (column), rank 1 at the top, each cell the unit's name and its "
               f"{SENSITIVITY}" + (f"; {where}" if where else "") + ". Colours on the sensitivity heatmap's scale.")
    return figures.save_figure(fig, out_base, caption=caption)


@when_drawn
def plot_per_tag_accuracy(accuracy: Mapping[str, float | None], out_base: str | os.PathLike, *,
                          title: str = "Per-tag recall", where: str = "") -> list[Path]:
    """Bar chart of each tag's recall (``tag_order``), then ``ALL`` (token accuracy) and ``F1`` (entity F1) if
    present; missing bars marked n/a. ``where`` names the split in the caption."""
    tags = [t for t in accuracy if t not in ("ALL", "F1")]
    names = [tags[i] for i in tag_order(tags)] + [t for t in ("ALL", "F1") if t in accuracy]
    vals = np.array([np.nan if accuracy[t] is None else float(accuracy[t]) for t in names])
    palette = colours(tags)
    fig = new_figure(max(5.0, 1.4 + 0.62 * len(names)), 4.0)
    ax = fig.subplots()
    x = np.arange(len(names))
    ax.bar(x, np.nan_to_num(vals), color=[palette.get(t, "black") for t in names], alpha=0.85)
    font = font_size(len(names), 8, 5.5, 40)
    for xi, v in zip(x, vals):
        ax.text(xi, (v if np.isfinite(v) else 0) + 0.01, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center",
                va="bottom", fontsize=font, rotation=90 if len(names) > 14 else 0)
    ax.set_xticks(x, names, fontsize=font_size(len(names), 9, 6.5, 40), rotation=90 if len(names) > 12 else 0)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("recall of the tag; ALL: token accuracy;\nF1: entity F1 (higher is better)", fontsize=8.5)
    ax.set_title(title, fontsize=11)
    caption = ("The model's recall of each tag (the share of its gold tokens predicted as the tag), its token "
               "accuracy (ALL) and its entity F1 (F1, conlleval), before any ablation; higher is better"
               + (f"; {where}" if where else "") + ".")
    return figures.save_figure(fig, out_base, caption=caption)
