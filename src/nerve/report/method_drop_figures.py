"""Figures of the ranking methods' held-out sweeps: each method's drop per tag at one k (a heatmap), and each
method's own drop by k."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nerve.report import figures
from nerve.report.ablation_figures import RANDOM_BAND, RANDOM_MEAN, panel_grid, panel_legend, style_panel
from nerve.report.figures import (
    DROP_SIGN,
    TERMS,
    distinct_styles,
    drop_label,
    limits,
    new_figure,
)
from nerve.report.formats import when_drawn
from nerve.tags import tag_order

DROP_LIMIT = 1.0  # every drop heatmap spans -1..1: figures drawn apart compare by colour


def _headline_and_context(title: str) -> tuple[str, str]:
    """A caller's title "headline: where and how" split in two (the context alone when there is no colon)."""
    head, sep, rest = title.partition(": ")
    return (head, rest) if sep else ("", title)


@when_drawn
def plot_method_drops(methods: Sequence[str], tags: Sequence[str], M: np.ndarray, out_base: str | os.PathLike,
                      title: str, score: str | None = None) -> list[Path]:
    """Heatmap of each ranking method's drop of each tag's own score (methods × tags), values printed in the cells,
    on one colour scale for every such figure (-1..1).

    Args:
        M: (len(methods), len(tags)) drops (a score at k = 0 minus the score with the top k ablated);
            NaN cells grey.
        score: "accuracy" (the tag's recall) or "f1" (its token F1); None: "f1" when the title speaks of token F1.
    """
    from matplotlib.colors import TwoSlopeNorm

    if score is None:
        score = "f1" if "token F1" in title else "accuracy"
    quantity = "recall" if score == "accuracy" else "f1"
    data = np.asarray(M, dtype=np.float64)
    fig = new_figure(2.8 + 0.55 * len(tags), 1.7 + 0.42 * len(methods))
    ax = fig.subplots()
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-DROP_LIMIT, vmax=DROP_LIMIT)
    img = ax.imshow(data, cmap=figures.diverging_cmap(), norm=norm, interpolation="nearest", aspect="auto")
    ax.set_xticks(np.arange(len(tags)), list(tags), fontsize=8, rotation=90)
    ax.set_yticks(np.arange(len(methods)), list(methods), fontsize=8)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            if np.isfinite(v):
                dark = abs(norm(v) - 0.5) > 0.3
                ax.text(j, i, f"{v + 0.0:.2f}".replace("-0.00", "0.00"), ha="center", va="center", fontsize=6.5,
                        color="white" if dark else "black")
    cbar = fig.colorbar(img, ax=ax, fraction=0.05, pad=0.03)
    cbar.set_label(drop_label(quantity).replace("; ", ";\n"), fontsize=7)  # short lines: fit a two-method figure
    cbar.ax.tick_params(labelsize=7)
    ax.set_title(figures.wrap(title, fig.get_figwidth() - 0.3, 9), fontsize=9)
    head, context = _headline_and_context(title)
    caption = (f"{head + ': t' if head else 'T'}he {TERMS[quantity]} of a tag (column; {DROP_SIGN}) when a ranking "
               f"method's (row) top units of that tag are intervened on; {context}. Grey: undefined. Every drop "
               f"heatmap shares one colour scale (-{DROP_LIMIT:g} to {DROP_LIMIT:g}).")
    return figures.save_figure(fig, out_base, caption=caption)


@when_drawn
def plot_method_curves(rows: np.ndarray, ablate: str, out_base: str | os.PathLike, title: str,
                       score: str = "accuracy", keep: bool = False) -> list[Path]:
    """Small multiples, one panel per target tag: the drop of the tag's own score over k for each ranking method's
    top k, and the 2.5–97.5 percentile band and mean of the random draws' drop (the null every method is judged
    against). The title is the caller's context (after a "headline: " if any) under this figure's own headline.

    Args:
        rows: ``heldout.method_sweeps`` rows (methods.csv); ablate: "zero" or "mean"; score: the column plotted
            ("accuracy": the tag's recall, "f1": its token F1); keep: the rows are sufficiency sweeps
            (``heldout.method_sufficiency``: k units kept, every other intervened on), drawn as the gain over k = 0.
    """
    from matplotlib import colormaps

    from nerve.analysis.heldout import RANDOM

    quantity = "recall" if score == "accuracy" else "f1"
    rows = rows[(rows["ablate"] == ablate) & (rows["eval_tag"] == rows["target_tag"])]
    targets = list(dict.fromkeys(rows["target_tag"].tolist()))
    targets = [targets[i] for i in tag_order(targets)]
    methods = [m for m in dict.fromkeys(rows["method"].tolist()) if m != RANDOM]
    fig, axes = panel_grid(len(targets), extra_height=0.3)
    pal = colormaps["tab10"].colors
    base_styles = ["-", "--", "-.", (0, (5, 1, 1, 1, 1, 1))]
    styles = distinct_styles([(m, pal[i % 10], base_styles[i % 4]) for i, m in enumerate(methods)])
    ydata = [np.zeros(1)]
    draws = 0
    sign = -1.0 if keep else 1.0  # sufficiency: the gain (after minus none kept), not the drop
    for ax, t in zip(axes, targets):
        mine = rows[rows["target_tag"] == t]
        rnd = mine[mine["method"] == RANDOM]
        if rnd.size:
            ks = np.unique(rnd["k"])
            order = np.lexsort((rnd["draw"], rnd["k"]))
            acc = rnd[score][order].reshape(ks.size, -1)
            draws = acc.shape[1]
            drop = sign * (acc[0][None, :] - acc)
            lo, hi = np.percentile(drop, [2.5, 97.5], axis=1)
            ax.fill_between(ks, lo, hi, color="0.6", alpha=0.3, lw=0, label=RANDOM_BAND)
            ax.plot(ks, drop.mean(axis=1), color="black", ls=":", lw=1.4, label=RANDOM_MEAN)
            ydata += [lo, hi]
        for m in methods:
            r = mine[mine["method"] == m]
            r = r[np.argsort(r["k"], kind="stable")]
            if r.size:
                ax.plot(r["k"], sign * (r[score][0] - r[score]), **styles[m], lw=1.5, label=m)
                ydata.append(sign * (r[score][0] - r[score]))
        style_panel(ax, t)
    for ax in axes[len(targets):]:
        ax.set_axis_off()
    axes[0].set_ylim(limits(ydata))
    _, context = _headline_and_context(title)
    if keep:
        gain = TERMS[quantity].replace("drop", "gain")
        fig.supxlabel("number of units kept, k (each method's top k for the panel's tag; every other unit "
                      "intervened on)", fontsize=9)
        fig.supylabel(f"{gain} of the panel's tag\n(after minus with none kept; positive = restored)", fontsize=9)
        fig.suptitle(f"{gain.capitalize()} of each tag by k units kept\n{context}", fontsize=10)
    else:
        fig.supxlabel("number of units intervened on, k (each method's top k for the panel's tag)", fontsize=9)
        fig.supylabel(drop_label(quantity, "the panel's tag"), fontsize=9)
        fig.suptitle(f"{TERMS[quantity].capitalize()} of each tag by k\n{context}", fontsize=10)
    if targets:
        panel_legend(fig, axes, len(targets))
    caption = (f"One panel per tag: the {TERMS[quantity]} of the panel's tag ({DROP_SIGN}) as each ranking "
               f"method's top k units of that tag are intervened on; {context}. Grey: k random units (mean dotted, "
               f"95% of {draws} draws shaded). The panels share both axes.")
    if keep:
        caption = (f"One panel per tag: the {TERMS[quantity].replace('drop', 'gain')} of the panel's tag (after minus "
                   f"with none kept; positive = restored) as only each ranking method's top k units of that tag are "
                   f"kept and every other unit is intervened on; {context}. Grey: k random units kept (mean dotted, "
                   f"95% of {draws} draws shaded). The panels share both axes.")
    return figures.save_figure(fig, out_base, caption=caption)
